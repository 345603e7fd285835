"""UI language: ``?lang=``, the session's choice or the browser's Accept-Language, else
the app's default locale."""

from __future__ import annotations

from collections.abc import Mapping

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
    "my_records": {"zh": "我的{entity}", "en": "My {entity} list"},
    "my_records_help": {"zh": "您可以查看和处理的{entity}",
                        "en": "The {entity} records you can see and act on"},
    "no_records": {"zh": "暂无记录", "en": "Nothing here yet"},
    "more_records": {"zh": "下一页", "en": "Next page"},
    "choose_record": {"zh": "“{form}”要在具体记录上填写：请在下面选择一条。",
                      "en": "“{form}” is filled in on a record: choose one below."},
    "new_forms": {"zh": "新建", "en": "Create"},
    "public_forms": {"zh": "无需登录即可使用", "en": "Open to everyone"},
    "login_for_more": {"zh": "登录后可查看您的记录和待办。",
                       "en": "Log in to see your records and what to do next."},
    "nothing_to_do": {"zh": "您的角色暂时没有可用的页面。请联系管理员。",
                      "en": "Your role has nothing to use here yet. Ask an administrator."},
    "offers": {"zh": "待您接单", "en": "Offered to you"},
    "offer_expires": {"zh": "截止", "en": "Answer by"},
    "actions": {"zh": "可执行的操作", "en": "What you can do"},
    "no_actions": {"zh": "当前没有需要您处理的操作。", "en": "Nothing for you to do on it now."},
    "details": {"zh": "详情", "en": "Details"},
    "open": {"zh": "查看", "en": "Open"},
    "back_to_record": {"zh": "返回记录", "en": "Back to the record"},
    "action_done": {"zh": "已完成：{action}", "en": "Done: {action}"},
    "files_discarded": {"zh": "提交未成功，已上传的文件未保存：请重新选择文件。",
                        "en": "Nothing was saved, including the uploaded files: choose "
                              "them again."},
    "view_record": {"zh": "查看记录", "en": "View the record"},
    "link_ended": {"zh": "此进度链接已失效：工单已结束。如需帮助，请登录查看或联系客服。",
                   "en": "This tracking link has ended: the order is finished. Log in or "
                          "contact us if you need help."},
    "track_forms": {"zh": "您可以", "en": "You can"},
    "login_to_use": {"zh": "（需登录）", "en": "(log in first)"},
    "updated": {"zh": "最后更新", "en": "Last updated"},
    "error_title": {"zh": "出错了", "en": "Something went wrong"},
    "error_400": {"zh": "请求无效。", "en": "The request is not valid."},
    "error_401": {"zh": "请先登录。", "en": "Please log in first."},
    "error_403": {"zh": "您没有权限执行此操作或查看此页面。",
                  "en": "You are not allowed to do this or to see this page."},
    "error_404": {"zh": "找不到该页面或记录，或您无权查看。",
                  "en": "This page or record does not exist, or you may not see it."},
    "error_405": {"zh": "此页面不支持该操作。", "en": "This page does not support that."},
    "error_409": {"zh": "记录已被更改，或当前状态下不能执行此操作。",
                  "en": "The record has changed, or this cannot be done in its current state."},
    "error_410": {"zh": "此链接已失效。", "en": "This link has ended."},
    "error_413": {"zh": "上传的内容太大。", "en": "The upload is too large."},
    "error_422": {"zh": "提交的内容无效，未保存任何内容。",
                  "en": "What was sent is not valid; nothing was saved."},
    "error_500": {"zh": "服务器出错了，我们已记录此问题，未保存任何内容。",
                  "en": "The server failed; the problem is logged and nothing was saved."},
    "error_503": {"zh": "尚未发布应用版本，请稍后再试。",
                  "en": "No app version is published yet; try again later."},
    "next_login": {"zh": "登录", "en": "Log in"},
    "next_home": {"zh": "返回首页", "en": "Go to the home page"},
    "next_back": {"zh": "返回上一页", "en": "Go back"},
    "next_reload": {"zh": "重新打开记录后再试", "en": "Reopen the record and try again"},
    "next_retry": {"zh": "稍后再试", "en": "Try again later"},
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
    if request.accept_languages:  # the browser's preference, when it states one
        best = request.accept_languages.best_match(["zh", "en"])
        if best:
            return best
    try:
        return str(current_app.extensions["dispatchflow"].app.default_locale)
    except Exception:  # noqa: BLE001 - no version published yet: fall back
        return "zh"


def t(key: str, **params: str) -> str:
    """UI text in the request's language, with ``{name}`` placeholders filled in."""
    text = UI_TEXT[key][locale()]
    return text.format(**params) if params else text


def label(value: Mapping[str, str] | None, fallback: str = "") -> str:
    """A bundle label ({zh, en}) in the request's language."""
    if not value:
        return fallback
    return value.get(locale()) or value.get("zh") or value.get("en") or fallback
