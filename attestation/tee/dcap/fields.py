"""Measurements and vendor fields of a DCAP quote, by the names of the claims contract."""

from __future__ import annotations

from attestation.claims import VendorValue
from attestation.tee.dcap.quote import EnclaveReport, Quote, TdReport


def measurements(quote: Quote) -> dict[str, bytes]:
    """The quote's measurements by claim name.

    TDX: MRTD, RTMR0-3, MRCONFIGID, MROWNER, MROWNERCONFIG, MRSEAM, MRSIGNERSEAM (+ MRSERVICETD for TD 1.5);
    SGX: MRENCLAVE, MRSIGNER.
    """
    body = quote.body
    if isinstance(body, EnclaveReport):
        return {"mrenclave": body.mr_enclave, "mrsigner": body.mr_signer}
    values = {
        "mrtd": body.mr_td,
        **{f"rtmr{index}": rtmr for index, rtmr in enumerate(body.rtmrs)},
        "mrconfigid": body.mr_config_id,
        "mrowner": body.mr_owner,
        "mrownerconfig": body.mr_owner_config,
        "mrseam": body.mr_seam,
        "mrsignerseam": body.mr_signer_seam,
    }
    if body.mr_service_td is not None:
        values["mrservicetd"] = body.mr_service_td
    return values


def body_fields(quote: Quote) -> dict[str, VendorValue]:
    """The quote's header and body fields that are not measurements (quote version, TEE type, SVNs, attributes)."""
    fields: dict[str, VendorValue] = {"quote_version": quote.header.version, "tee_type": quote.header.tee_type}
    body = quote.body
    if isinstance(body, TdReport):
        fields.update(
            tee_tcb_svn=body.tee_tcb_svn,
            td_attributes=body.td_attributes,
            xfam=body.xfam,
            seam_attributes=body.seam_attributes,
        )
        if body.tee_tcb_svn2 is not None:
            fields["tee_tcb_svn2"] = body.tee_tcb_svn2
    else:
        fields.update(
            isv_prodid=body.isv_prod_id,
            isv_svn=body.isv_svn,
            attributes=body.attributes,
            misc_select=body.misc_select,
            enclave_cpu_svn=body.cpu_svn,
        )
    return fields


def decode_quote(quote: Quote) -> dict[str, VendorValue]:
    """Every field of the quote, unverified (for inspection)."""
    qe = quote.certification.qe_report
    return {
        **body_fields(quote),
        "body_type": quote.body_type,
        "attestation_key_type": quote.header.attestation_key_type,
        "qe_svn": quote.header.qe_svn,
        "header_pce_svn": quote.header.pce_svn,
        "qe_vendor_id": quote.header.qe_vendor_id,
        "user_data": quote.header.user_data,
        "measurements": measurements(quote),
        "report_data": quote.body.report_data,
        "debug": quote.body.debug,
        "attestation_key": quote.attestation_key,
        "signature": quote.signature,
        "qe_report": {
            "mrenclave": qe.mr_enclave,
            "mrsigner": qe.mr_signer,
            "isv_prodid": qe.isv_prod_id,
            "isv_svn": qe.isv_svn,
            "attributes": qe.attributes,
            "misc_select": qe.misc_select,
            "report_data": qe.report_data,
        },
        "qe_auth_data": quote.certification.qe_auth_data,
        "pck_chain_pem": quote.certification.pck_chain_pem.rstrip(b"\0").decode("ascii", errors="replace"),
    }
