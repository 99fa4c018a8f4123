"""Which study a request touches: Orthanc ids resolved to StudyInstanceUIDs, cached.

Needed to check a referrer's links and to audit "study viewed" once per study. Orthanc
ids never change meaning (a deleted resource's id is never reused), so the cache needs
no invalidation, only a bound.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from hounsfield.auth.permissions import StudyRef
from hounsfield.orthanc_api import OrthancApi

CACHE_SIZE = 20_000

_STUDY_OF = {
    StudyRef.ORTHANC_STUDY: "/studies/{}",
    StudyRef.ORTHANC_SERIES: "/series/{}/study",
    StudyRef.ORTHANC_INSTANCE: "/instances/{}/study",
}


class StudyResolver:
    def __init__(self, orthanc: OrthancApi, cache_size: int = CACHE_SIZE) -> None:
        self._orthanc = orthanc
        self._cache: OrderedDict[tuple[StudyRef, str], str | None] = OrderedDict()
        self._size = cache_size
        self._lock = threading.Lock()

    def study_uid(self, ref: StudyRef, value: str) -> str | None:
        """The StudyInstanceUID ``value`` belongs to, or None if there is no such resource."""
        if ref is StudyRef.STUDY_UID:
            return value
        if ref is StudyRef.SOP_INSTANCE_UID:
            instance = self._orthanc.find_instance(value)
            return self.study_uid(StudyRef.ORTHANC_INSTANCE, instance) if instance else None
        if ref not in _STUDY_OF:
            return None
        key = (ref, value)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        try:
            study = self._orthanc.get_json(_STUDY_OF[ref].format(value))
            uid = study["MainDicomTags"]["StudyInstanceUID"]
        except Exception:  # unknown id: nothing to resolve, and not worth caching
            return None
        with self._lock:
            self._cache[key] = uid
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return uid
