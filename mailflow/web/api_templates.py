"""The templates API, ``/api/v1/templates``: list, show, save a draft, publish, roll back,
preview, test send. Invalid templates are answered 422 with each problem's part and line."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from mailflow.schemas import MAX_ID, Email
from mailflow.services import templates
from mailflow.web.api_models import (
    DiffOut,
    QueuedOut,
    RenderedOut,
    TemplateOut,
    TemplateRow,
    VersionOut,
)
from mailflow.web.auth import Authenticated
from mailflow.web.deps import ServicesDep
from mailflow.web.renders import run_render
from mailflow.web.responses import API_ERRORS, errors

router = APIRouter(
    prefix="/api/v1/templates",
    dependencies=[Authenticated],
    tags=["templates"],
    responses=errors(*API_ERRORS),
)


class TemplateProblem(BaseModel):
    part: str = Field(examples=["html"])
    line: int | None = Field(examples=[12])
    message: str = Field(examples=["unknown variable 'sale.titel'"])


class InvalidTemplateOut(BaseModel):
    """The template was not saved: each problem, with its part and line."""

    error: str = Field(examples=["invalid_template"])
    errors: list[TemplateProblem]


_INVALID = {
    422: {
        "description": "A field is invalid (`detail`), or the template is (`errors`).",
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {"$ref": "#/components/schemas/InvalidOut"},
                        {"$ref": "#/components/schemas/InvalidTemplateOut"},
                    ]
                }
            }
        },
    }
}

Key = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z_]+$")]
Locale = Annotated[str, Path(min_length=2, max_length=8, pattern=r"^[a-z]+$")]
MAX_PART = 200_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DraftIn(_Body):
    subject: str = Field(max_length=MAX_PART)
    text: str = Field(max_length=MAX_PART)
    html: str = Field(max_length=MAX_PART)


class VersionIn(_Body):
    version: int = Field(ge=0, le=MAX_ID)


class PreviewIn(_Body):
    subject: str | None = Field(default=None, max_length=MAX_PART)
    text: str | None = Field(default=None, max_length=MAX_PART)
    html: str | None = Field(default=None, max_length=MAX_PART)
    sale_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class TestSendIn(_Body):
    to: Email
    sale_id: int | None = Field(default=None, ge=1, le=MAX_ID)


def invalid_template(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, templates.TemplateInvalid)
    return JSONResponse(
        {"error": "invalid_template", "errors": [p.as_dict() for p in exc.problems]},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


@router.get("", response_model=list[TemplateRow])
def list_templates(services: ServicesDep) -> list[dict[str, Any]]:
    """Every key and locale: the published version, the latest draft, drift of the default."""
    return templates.list_templates(services)


@router.get("/{key}/{locale}", response_model=TemplateOut, responses=errors(404))
def show_template(
    key: Key, locale: Locale, services: ServicesDep, version: int | None = None
) -> dict[str, Any]:
    return templates.show(services, key, locale, version)


@router.put(
    "/{key}/{locale}",
    status_code=status.HTTP_201_CREATED,
    response_model=VersionOut,
    responses=errors(404, extra=_INVALID),
)
async def save_draft(
    key: Key, locale: Locale, data: DraftIn, services: ServicesDep
) -> dict[str, int]:
    """Validate and save a draft; it changes no mail until published."""
    save = partial(templates.save_draft, services, key, locale, data.subject, data.text, data.html)
    return {"version": await run_render(save)}


@router.post("/{key}/{locale}/publish", response_model=TemplateOut, responses=errors(404))
async def publish(
    key: Key, locale: Locale, data: VersionIn, services: ServicesDep
) -> dict[str, Any]:
    return await run_render(partial(templates.publish, services, key, locale, data.version))


@router.post("/{key}/{locale}/rollback", response_model=TemplateOut, responses=errors(404))
async def rollback(
    key: Key, locale: Locale, data: VersionIn, services: ServicesDep
) -> dict[str, Any]:
    """Publish an earlier version again (0 is the shipped default)."""
    return await run_render(partial(templates.publish, services, key, locale, data.version))


@router.get("/{key}/{locale}/diff/{version}", response_model=DiffOut, responses=errors(404))
def diff(
    key: Key, locale: Locale, version: Annotated[int, Path(ge=1, le=MAX_ID)], services: ServicesDep
) -> dict[str, Any]:
    """How the shipped default changed since ``version`` was edited from it."""
    return templates.diff(services, key, locale, version)


@router.post(
    "/{key}/{locale}/preview", response_model=RenderedOut, responses=errors(404, extra=_INVALID)
)
async def preview(
    key: Key, locale: Locale, data: PreviewIn, services: ServicesDep
) -> dict[str, str]:
    render = partial(
        templates.preview,
        services,
        key,
        locale,
        subject=data.subject,
        text=data.text,
        html=data.html,
        sale_id=data.sale_id,
    )
    return await run_render(render)


@router.post(
    "/{key}/{locale}/test-send",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=QueuedOut,
    responses=errors(404, extra=_INVALID),
)
async def test_send(
    key: Key, locale: Locale, data: TestSendIn, services: ServicesDep
) -> dict[str, Any]:
    send = partial(templates.test_send, services, key, locale, data.to, sale_id=data.sale_id)
    outbox_id = await run_render(send)
    return {"queued": outbox_id, "to": data.to}
