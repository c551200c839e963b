"""Pure verification of TEE attestation evidence into TEE-neutral claims, and their appraisal.

Imports nothing from the other ccdeploy packages. The verifiers arrive with the attestation issues
(AWS Nitro Enclaves, AMD SEV-SNP, Intel TDX, Azure Attestation, NVIDIA GPU); this package is laid out
now so that the import rules of the architecture are enforced from the first commit.
"""
