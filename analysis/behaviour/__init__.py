"""How the winners win: public messages checked against the record and labelled by validated judges.

Modules: ``taxonomy`` (the tactics and their written definitions), ``messages`` (public messages out
of a record), ``claims`` (the truthfulness ledger's deterministic extractor), ``gaslighting``
(statements about past turns checked against the record), ``rules`` (the offline rules judge),
``judge`` (judging through the Backend, the judgements store), ``agreement`` (kappa, precision and
recall with cluster-bootstrap intervals), ``validation`` (judges vs the hand-labelled set),
``tables`` (behaviour tables of a store), ``cli`` (``python -m analysis judge|validate``).
"""
