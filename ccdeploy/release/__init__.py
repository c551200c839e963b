"""Attested key release: the wire protocol, the report-data binding, HPKE, release policies and receipts.

The modules an enclave needs (:mod:`~ccdeploy.release.binding`, :mod:`~ccdeploy.release.hpke`,
:mod:`~ccdeploy.release.protocol`, :mod:`~ccdeploy.release.client`) import nothing from the broker or the
KEK providers, so the enclave image can carry them alone.
"""
