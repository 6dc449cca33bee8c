"""Claims in: the readers (JSON Lines, CSV) that build runtime claims or error records."""
