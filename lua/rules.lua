-- Where stable series go: the routing rules, edited by the server's administrators.
--
-- Orthanc loads this file, then lua/routing.lua (the engine), through "LuaScripts" in
-- orthanc.json. When a series has received no new instance for StableAge seconds, every
-- rule below is tried on it; each rule that matches queues one Orthanc job per destination
-- (visible in /jobs and in /api/health's "routing" component). A destination that is down
-- is retried by the plugin (HounsfieldRouting in orthanc.json: attempts and delays).
--
-- A rule:
--   Name    what the log and this file call it
--   Match   the series' values that must all match; each a text or a list of texts (any of
--           them), case-insensitive, with DICOM's wildcards: * (any run) and ? (one letter).
--           Keys: any of the series' main DICOM tags as Orthanc names them (Modality,
--           SeriesDescription, BodyPartExamined, Manufacturer, StationName, ProtocolName,
--           SeriesNumber...), and CallingAet (the AE title that sent the series) or
--           CalledAet (the AE title it was sent to). A rule with no Match sends nothing.
--   SendTo  destinations by name: a DICOM modality ("DicomModalities") or an Orthanc peer
--           ("OrthancPeers") of this server's configuration.
--
-- The example sends what this server makes to a long-term archive: its reconstructed CT
-- series and its signed reports (the report's SR and PDF are stored only once signed).
-- Declare "archive" in orthanc.json, e.g.
--   "DicomModalities": { "archive": [ "ARCHIVE", "archive.hospital.org", 104 ] }
-- Until it is declared, matching series are logged and not sent.

RoutingRules = {
  {
    Name = "Reconstructed CT series to the archive",
    Match = { Modality = "CT", Manufacturer = "Hounsfield" },
    SendTo = { "archive" },
  },
  {
    Name = "Signed reports to the archive",
    Match = {
      Modality = { "SR", "DOC" },
      Manufacturer = "Hounsfield",
      SeriesDescription = { "Report", "Report (PDF)" },
    },
    SendTo = { "archive" },
  },
}
