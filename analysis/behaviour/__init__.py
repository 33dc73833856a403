"""How the winners win: public messages checked against the record (truthfulness ledger,
gaslighting) and labelled by validated judges (tactics taxonomy), as tables beside the scaling laws."""
