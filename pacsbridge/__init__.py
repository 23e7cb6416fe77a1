"""pacsbridge: pull a clinic's ultrasound studies and SR measurements over DICOMweb."""
