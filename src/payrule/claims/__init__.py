"""Claims in: the readers (JSON Lines, CSV) that build runtime claims or error records, one ReadSession per run.
The fields they read are described once, in `payrule.runtime.schema`."""
