"""The job kinds reconstruction registers (their names are kept in the job table)."""

SIMULATE = "recon.simulate"  # project a phantom and store it as an acquisition
RECONSTRUCT = "recon.reconstruct"  # any method (FDK, SART, CG, TV) into a CT series
ARCHIVE = "recon.archive"  # a spooled TIFF upload into a DICOM projection series
