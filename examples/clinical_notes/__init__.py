"""The clinical-notes example: synthetic visits documented, coded, checked and remembered."""
