"""Every page text exists in both languages, with the same placeholders."""

from __future__ import annotations

import re

from dispatchflow.web.i18n import UI_TEXT


def test_every_ui_text_has_zh_and_en_with_the_same_placeholders() -> None:
    for key, texts in UI_TEXT.items():
        assert set(texts) == {"zh", "en"}, key
        assert texts["zh"].strip() and texts["en"].strip(), key
        assert set(re.findall(r"{(\w+)}", texts["zh"])) == \
            set(re.findall(r"{(\w+)}", texts["en"])), key


def test_the_error_page_has_words_for_every_status_it_names() -> None:
    from dispatchflow.web.errors import PAGE_STATUSES

    for status in PAGE_STATUSES:
        assert f"error_{status}" in UI_TEXT
