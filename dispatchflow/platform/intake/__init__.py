"""Intake: records that arrive from outside.

What belongs here: inbound channels (``channels``: signed webhooks and e-mail
turned into records, with their field mappings), their signatures
(``signatures``) and CSV import (``csv_import``). It may import ``dispatch``,
``runtime`` and the layers below them.
"""
