"""The AI bill of materials (CycloneDX 1.6 ML-BOM, SPDX 3.0.1). Imports nothing from the other packages.

Populated by the provenance issue; laid out now so the import rules are enforced from the first commit.
"""
