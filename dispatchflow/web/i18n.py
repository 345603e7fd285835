"""UI language: ``?lang=`` or the session's choice, else the app's default locale."""

from __future__ import annotations

from flask import current_app, request, session

UI_TEXT: dict[str, dict[str, str]] = {
    "login": {"zh": "登录", "en": "Log in"},
    "logout": {"zh": "退出", "en": "Log out"},
    "username": {"zh": "用户名", "en": "Username"},
    "password": {"zh": "密码", "en": "Password"},
    "login_failed": {"zh": "用户名或密码错误", "en": "Wrong username or password"},
    "forms": {"zh": "表单", "en": "Forms"},
    "submitted": {"zh": "已提交", "en": "Submitted"},
    "tracking_link": {"zh": "进度查询链接", "en": "Tracking link"},
    "track_title": {"zh": "工单进度", "en": "Request status"},
    "link_expired": {"zh": "链接无效或已过期", "en": "This link is invalid or has expired"},
    "fix_errors": {"zh": "请修正标出的错误", "en": "Please correct the marked fields"},
    "no_version": {"zh": "尚未发布应用版本", "en": "No app version is published yet"},
    "language": {"zh": "English", "en": "中文"},
    "home": {"zh": "首页", "en": "Home"},
    "record_number": {"zh": "编号", "en": "Number"},
    "status": {"zh": "状态", "en": "Status"},
    "api_docs": {"zh": "REST API 文档", "en": "REST API reference"},
    "api_docs_intro": {"zh": "由当前发布版本生成。点击“Authorize”填入 API 令牌（Bearer）"
                             "后可直接试用接口。",
                       "en": "Generated from the active app version. Choose Authorize and "
                             "enter an API token (Bearer) to try the operations."},
    "api_docs_noscript": {"zh": "此页面需要 JavaScript；也可直接阅读",
                          "en": "This page needs JavaScript; you can also read"},
}


def locale() -> str:
    """The request's UI language: zh or en."""
    asked = request.args.get("lang")
    if asked in ("zh", "en"):
        session["lang"] = asked
        return asked
    chosen = session.get("lang")
    if chosen in ("zh", "en"):
        return str(chosen)
    try:
        return str(current_app.extensions["dispatchflow"].app.default_locale)
    except Exception:  # noqa: BLE001 - no version published yet: fall back
        return "zh"


def t(key: str) -> str:
    """UI text in the request's language."""
    return UI_TEXT[key][locale()]


def label(value: dict[str, str] | None, fallback: str = "") -> str:
    """A bundle label ({zh, en}) in the request's language."""
    if not value:
        return fallback
    return value.get(locale()) or value.get("zh") or value.get("en") or fallback
