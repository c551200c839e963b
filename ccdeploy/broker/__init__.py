"""The key broker: releases a model's data key only to an enclave whose evidence satisfies the model's policy.

:mod:`~ccdeploy.broker.service` decides (no HTTP), :mod:`~ccdeploy.broker.app` serves it over HTTP (Starlette),
:mod:`~ccdeploy.broker.store` keeps its state (SQLite or PostgreSQL), :mod:`~ccdeploy.broker.keys` its keys.
"""
