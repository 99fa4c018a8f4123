"""The hospital's systems: the ``HounsfieldHIS`` configuration section.

    "HounsfieldHIS": {
      "Fhir": {"BaseUrl": "https://his.example.org/fhir", "Auth": "bearer", "Token": "...",
               "TimeoutSeconds": 5, "Retries": 2, "CacheSeconds": 300, "PollSeconds": 60},
      "Mllp": {"Port": 2575},
      "Worklist": true
    }

Each road is off until configured: no ``BaseUrl``, no FHIR; ``Port`` 0, no MLLP listener.
Orders entered by hand and the Modality Worklist need nothing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_pascal

SECTION = "HounsfieldHIS"


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_pascal, extra="forbid", frozen=True, populate_by_name=True
    )


class FhirSettings(_Model):
    base_url: str = ""  # the FHIR R4 server's base, e.g. https://his/fhir; empty: no FHIR
    auth: Literal["none", "basic", "bearer"] = "none"
    username: str = ""
    password: str = ""
    token: str = ""
    timeout_seconds: float = Field(5.0, gt=0, le=120)  # per attempt
    retries: int = Field(2, ge=0, le=10)  # after the first attempt, on errors worth retrying
    backoff_seconds: float = Field(0.5, ge=0, le=30)  # doubled at each retry
    deadline_seconds: float = Field(15.0, gt=0, le=300)  # all attempts of one lookup
    cache_seconds: float = Field(300.0, ge=0)
    poll_seconds: float = Field(60.0, ge=0)  # ServiceRequest polling; 0: never
    max_response_bytes: int = Field(8 << 20, gt=0)

    @model_validator(mode="after")
    def _credentials(self) -> FhirSettings:
        if self.auth == "basic" and not self.username:
            raise ValueError("Auth basic needs a Username")
        if self.auth == "bearer" and not self.token:
            raise ValueError("Auth bearer needs a Token")
        return self


class MllpSettings(_Model):
    host: str = "0.0.0.0"
    port: int = Field(0, ge=0, le=65535)  # 0: no listener
    max_connections: int = Field(32, ge=1, le=1024)
    max_message_bytes: int = Field(1 << 20, ge=1024)
    idle_seconds: float = Field(120.0, gt=0)  # a connection silent this long is closed
    # Our MSH-3/MSH-4 in acknowledgements.
    application: str = "HOUNSFIELD"
    facility: str = ""
    # The scheduled station AE title of orders that name none (OBR-21); empty: refused.
    default_station: str = Field("", max_length=16)


class HisSettings(_Model):
    fhir: FhirSettings = FhirSettings()
    mllp: MllpSettings = MllpSettings()
    worklist: bool = True  # answer Modality Worklist C-FIND from the open orders
