"""SR measurement extraction: walker, templates, vendor variants, DICOM JSON, fuzzing."""
