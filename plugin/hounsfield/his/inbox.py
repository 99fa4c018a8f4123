"""What the MLLP listener does with each HL7 message: apply it to the order book, answer.

Acknowledgement as HL7 v2 chapter 2 (original mode) says: ``AA`` once the message's
command is stored; ``AE`` for a message whose content we refuse (a missing field, an
accession number that belongs to another order), ``AR`` for what we cannot process (an
unsupported type, our own failure: the sender may try again). Every order and merge that
came this way is audited under the sending application's name.
"""

from __future__ import annotations

import logging

from hounsfield.audit.trail import AuditEntry, AuditTrail
from hounsfield.his.hl7v2 import (
    AckCode,
    HL7Rejected,
    Interpretation,
    acknowledge,
    interpret,
    nak,
)
from hounsfield.his.model import CancelOrder, MergePatients, PlaceOrder, UpdatePatient
from hounsfield.his.orders import OrderBook, OrderConflict
from hounsfield.his.settings import MllpSettings

log = logging.getLogger(__name__)
ACTIONS = {
    PlaceOrder: "order.place",
    CancelOrder: "order.cancel",
    UpdatePatient: "patient.update",
    MergePatients: "patient.merge",
}


class Inbox:
    def __init__(self, book: OrderBook, audit: AuditTrail, settings: MllpSettings) -> None:
        self.book = book
        self.audit = audit
        self.settings = settings

    def handle(self, message: bytes) -> bytes:
        """One message's acknowledgement (never raises: the listener answers ``nak``
        itself only if this fails to)."""
        reading = interpret(message, default_station=self.settings.default_station or None)
        if reading.rejection is not None:
            log.warning(
                "HL7 %s %s refused (%s): %s",
                reading.message_type or "message",
                reading.control_id,
                reading.rejection.code,
                reading.rejection.text,
            )
            return self._answer(message, reading, reading.rejection)
        assert reading.command is not None
        sender = _sender(reading)
        try:
            self.book.apply(reading.command, by=sender, message_id=reading.control_id)
        except OrderConflict as conflict:
            log.warning("HL7 %s %s refused: %s", reading.message_type, reading.control_id, conflict)
            return self._answer(message, reading, HL7Rejected("AE", str(conflict)))
        except Exception:
            log.exception("HL7 %s %s could not be stored", reading.message_type, reading.control_id)
            return nak(
                message,
                application=self.settings.application,
                facility=self.settings.facility,
            )
        self.audit.append(
            AuditEntry(
                action=ACTIONS[type(reading.command)],
                outcome="ok",
                username=sender,
                role="hl7",
                resource=f"HL7 {reading.message_type} {reading.control_id}",
                detail=_detail(reading),
            )
        )
        return self._answer(message, reading, "AA")

    def _answer(
        self, message: bytes, reading: Interpretation, code: HL7Rejected | AckCode
    ) -> bytes:
        source = reading.message if reading.message is not None else message
        return acknowledge(
            source,
            code,
            application=self.settings.application,
            facility=self.settings.facility,
        )


def _sender(reading: Interpretation) -> str:
    """``HL7 <MSH-3>@<MSH-4>``: who sent it, as audit entries name it."""
    if reading.message is None:
        return "HL7"
    header = reading.message.segment("MSH")
    return f"HL7 {header[3]}@{header[4]}".rstrip("@")  # python-hl7 numbers MSH as HL7 does


def _detail(reading: Interpretation) -> dict[str, str]:
    command = reading.command
    if isinstance(command, PlaceOrder):
        return {"accession": command.order.accession_number, "patient": command.order.patient.id}
    if isinstance(command, CancelOrder):
        return {"order": command.source_id}
    if isinstance(command, MergePatients):
        return {"prior": command.prior_id, "patient": command.patient.id}
    if isinstance(command, UpdatePatient):
        return {"patient": command.patient.id}
    return {}
