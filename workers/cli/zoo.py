"""`messplus zoo serve|register|list|disable|enable|remove`: the local CPU model zoo on a
real Triton, and the database's record of the zoo the routers choose from.

The default ports are Triton's own (gRPC 8001, HTTP 8000), so workers configured for a
local Triton reach it without changes; 0 picks a free port. `register` reads the same data
`serve` does, so the database names the models in the same order (cheapest first), each
priced at its mean cost in the data; it first asks the Triton at MESSPLUS_TRITON_URL
whether it serves every one of them the way model workers call it, so a zoo Triton does
not serve is never registered by mistake (`--no-check` skips that, for a Triton that is
not up yet). `enable` asks the same.

What leaving the zoo does to requests is said by each command: `disable` stops routers
from choosing the model (served or explored) from their next chunk, while the requests
already routed to it keep their decision and wait for its worker (or fail at once with
`--fail-waiting`); `remove` deletes a model no request was ever routed to, and refuses
any other (db/zoo.py says why).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from workers.cli import DATABASE, CliError, silence_stdout
from workers.cli._input import tcp_port

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from workers.zoo_server import ZooServer

__all__ = ["register"]

MAX_UNIT_CHARS = 16  # zoo_models.cost_unit is a String(16)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    zoo = subparsers.add_parser("zoo", help="the local model zoo on Triton (CPU)")
    commands = zoo.add_subparsers(dest="zoo_command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve the zoo until Ctrl-C or SIGTERM",
        description="Serve one Triton model per zoo member (text_input -> text_output, plus "
        "would_satisfy, cost, tokens). Without --data: the synthetic zoo (2000 prompts, seed 0).",
    )
    serve.add_argument("--data", type=Path, metavar="CSV", help="labelled zoo CSV to replay")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    serve.add_argument("--grpc-port", type=tcp_port, default=8001, help="default %(default)s")
    serve.add_argument("--http-port", type=tcp_port, default=8000, help="default %(default)s")
    serve.set_defaults(func=_serve, uses=frozenset())
    register_ = commands.add_parser(
        "register",
        help="record the zoo's models in the database",
        description="Create or update one database row per zoo model: name and Triton model "
        "name from the data, position = column order, cost per request = the model's mean "
        "cost in the data. Without --data: the synthetic zoo `zoo serve` serves by default.",
    )
    register_.add_argument("--data", type=Path, metavar="CSV", help="labelled zoo CSV")
    register_.add_argument("--unit", help="cost unit to record (default: the data's, J)")
    register_.add_argument(
        "--no-check",
        action="store_true",
        help="register without asking Triton (MESSPLUS_TRITON_URL) whether it serves the models",
    )
    register_.set_defaults(func=_register, uses=frozenset({DATABASE}))
    listing = commands.add_parser(
        "list",
        help="the models recorded in the database",
        description="Every model in position order with its Triton name, prices, whether "
        "routers may choose it, and how many routed requests wait for its answer.",
    )
    listing.set_defaults(func=_list, uses=frozenset({DATABASE}))
    disable = commands.add_parser(
        "disable",
        help="stop routing requests to a model",
        description="Routers stop choosing the model, served or explored, from their next "
        "chunk. Requests routed to it before wait for its answer: keep its worker running "
        "until `messplus zoo list` shows none waiting, or fail them now with --fail-waiting "
        "(they end failed with `NAME: disabled` and leave the SLA, like any failed request). "
        "Its answers, ratings and costs stay.",
    )
    disable.add_argument("name", metavar="NAME")
    disable.add_argument(
        "--fail-waiting",
        action="store_true",
        help="fail the routed requests still waiting for its answer",
    )
    disable.set_defaults(func=_disable, uses=frozenset({DATABASE}))
    enable = commands.add_parser(
        "enable",
        help="let routers choose a disabled model again",
        description="Routers may choose the model from their next chunk; first the Triton at "
        "MESSPLUS_TRITON_URL is asked whether it serves it (--no-check skips that).",
    )
    enable.add_argument("name", metavar="NAME")
    enable.add_argument("--no-check", action="store_true", help="do not ask Triton")
    enable.set_defaults(func=_enable, uses=frozenset({DATABASE}))
    remove = commands.add_parser(
        "remove",
        help="delete a model no request was ever routed to",
        description="For a model registered by mistake. A model with history (routed "
        "requests, answers, ratings) is refused: disable it instead.",
    )
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(func=_remove, uses=frozenset({DATABASE}))
    template = commands.add_parser(
        "template",
        help="register a model's chat template (or go back to the default)",
        description="Chat requests of the HTTP API reach a model as one prompt rendered from "
        "the messages with the model's chat template: a Jinja template as Hugging Face "
        "tokenizers ship them (messages, add_generation_prompt, bos_token, eos_token), "
        "rendered in a sandbox. Models without one use the default (README: Chat templates). "
        "The template is checked by rendering a short conversation before it is stored.",
    )
    template.add_argument("model", metavar="MODEL")
    source = template.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", type=Path, metavar="FILE", help="the template")
    source.add_argument("--default", action="store_true", help="use the default template")
    template.set_defaults(func=_template, uses=frozenset({DATABASE}))


def _announce(server: ZooServer) -> None:
    data = server.data
    try:
        print(f"zoo ready: {len(server.models)} models, {data.n_requests} prompts from {data.name}")
        print(f"  grpc: {server.grpc_url}")
        print(f"  http: {server.http_url}")
        for model in server.models:
            print(f"  model {model}")
        print("Ctrl-C or SIGTERM stops it.", flush=True)
    except BrokenPipeError:
        # Before Triton is stopped: it prints its last words to this stdout too.
        silence_stdout()
        raise


def _serve(args: argparse.Namespace) -> int:
    from router.dataset import DatasetError
    from workers.zoo_server import ZooError, load_zoo, serve

    if args.grpc_port and args.grpc_port == args.http_port:
        raise CliError(f"--grpc-port and --http-port are both {args.grpc_port}")
    try:
        data = load_zoo(args.data)
    except DatasetError as exc:
        raise CliError(str(exc)) from exc
    try:
        status = serve(
            data,
            grpc_port=args.grpc_port,
            http_port=args.http_port,
            host=args.host,
            on_ready=_announce,
        )
    except ZooError as exc:
        raise CliError(str(exc)) from exc
    if status:
        raise CliError("Triton exited unexpectedly")
    print("zoo stopped")
    return 0


def _register(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from db.errors import PositionTaken
    from db.zoo import list_models
    from router.dataset import DatasetError
    from workers.cli._context import settings, transaction
    from workers.provision import register_zoo
    from workers.triton_client import masked_url
    from workers.zoo_server import load_zoo

    try:
        data = load_zoo(args.data)
    except DatasetError as exc:
        raise CliError(str(exc)) from exc
    if args.unit is not None:
        if not 0 < len(args.unit) <= MAX_UNIT_CHARS or args.unit != args.unit.strip():
            raise CliError(f"--unit must be 1 to {MAX_UNIT_CHARS} characters, got {args.unit!r}")
        data = replace(data, cost_unit=args.unit)
    triton_url = settings().triton_url
    if not args.no_check:
        _require_served(
            triton_url,
            data.models,
            "nothing registered; name the zoo Triton serves with --data CSV "
            "(--no-check registers without asking)",
        )
    with transaction() as session:
        disabled = {m.name for m in list_models(session) if not m.enabled}
        try:
            register_zoo(session, data)
        except PositionTaken as exc:
            raise CliError(
                f"{exc}: {', '.join(exc.in_the_way)} already hold positions this zoo needs; "
                "`messplus zoo disable NAME` a model requests were routed to, or "
                "`messplus zoo remove NAME` one registered by mistake; nothing registered"
            ) from None
    checked = (
        "not checked against Triton"
        if args.no_check
        else f"Triton at {masked_url(triton_url)} serves each as model workers call it"
    )
    print(f"registered {data.n_models} models from {data.name} ({checked})")
    if again := sorted(disabled & set(data.models)):
        print(f"enabled again: {', '.join(again)}")
    return _list(args)


def _require_served(triton_url: str, models: Sequence[str], consequence: str) -> None:
    from workers.triton_client import serving_problems

    if problems := serving_problems(triton_url, models):
        raise CliError(f"{'; '.join(problems)}; {consequence}")


def _list(args: argparse.Namespace) -> int:
    from db.zoo import list_models, waiting_requests
    from workers.cli._context import transaction

    with transaction() as session:
        models = list_models(session)
        waiting = {m.id: len(waiting_requests(session, m.id)) for m in models}
    if not models:
        print("no models (register them with `messplus zoo register`)")
        return 0
    width = max(len(m.name) for m in models)
    triton = max(len("triton model"), *(len(m.triton_model_name) for m in models))
    print(
        f"{'pos':>3}  {'name':<{width}}  {'triton model':<{triton}}  {'cost/request':>12}  "
        f"{'cost/token':>10}  unit  enabled  waiting"
    )
    for m in models:
        print(
            f"{m.position:>3}  {m.name:<{width}}  {m.triton_model_name:<{triton}}  "
            f"{m.cost_per_request:>12.4g}  {m.cost_per_token:>10.4g}  {m.cost_unit:<4}  "
            f"{'yes' if m.enabled else 'no':<7}  {waiting[m.id]:>7}"
        )
    return 0


def _disable(args: argparse.Namespace) -> int:
    from db.inference import mark_failed
    from db.zoo import set_enabled, waiting_requests
    from workers.cli._context import transaction

    with transaction() as session:
        model = set_enabled(session, args.name, False)
        waiting = waiting_requests(session, model.id)
        failed = (
            mark_failed(session, waiting, f"{args.name}: disabled") if args.fail_waiting else []
        )
        predictor = _predictor_note(session)
    print(
        f"model {args.name} disabled: routers stop choosing it, served or explored, from "
        "their next chunk"
    )
    if failed:
        print(f"{len(failed)} request(s) routed to it failed with `{args.name}: disabled`")
    elif waiting:
        print(
            f"{len(waiting)} request(s) routed to it before wait for its answer: keep "
            f"`messplus worker model {args.name}` running until `messplus zoo list` shows "
            f"0 waiting, or fail them with `messplus zoo disable {args.name} --fail-waiting`"
        )
    else:
        print("no routed request waits for its answer")
    if predictor:
        print(predictor)
    return 0


def _enable(args: argparse.Namespace) -> int:
    from db.zoo import get_model_by_name, set_enabled
    from workers.cli._context import settings, transaction

    with transaction() as session:
        triton_name = get_model_by_name(session, args.name).triton_model_name
    if not args.no_check:
        _require_served(
            settings().triton_url, [triton_name], "not enabled (--no-check enables anyway)"
        )
    with transaction() as session:
        set_enabled(session, args.name, True)
        predictor = _predictor_note(session)
    print(
        f"model {args.name} enabled: routers may choose it from their next chunk; "
        f"`messplus worker model {args.name}` answers its requests"
    )
    if predictor:
        print(predictor)
    return 0


def _remove(args: argparse.Namespace) -> int:
    from db.errors import ModelInUse
    from db.zoo import remove_model
    from workers.cli._context import transaction

    with transaction() as session:
        try:
            remove_model(session, args.name)
        except ModelInUse as exc:
            raise CliError(
                f"{exc}: `messplus zoo disable {args.name}` stops routing to it instead"
            ) from None
    print(f"model {args.name} removed from the zoo")
    return 0


def _predictor_note(session: Session) -> str:
    """What changing the enabled models does to routing: the active predictor was trained
    for a number of models, and routers fall back to rating counts when it does not match."""
    from db.predictors import active_version
    from db.zoo import list_models
    from router.predictor import SatisfactionPredictor

    version = active_version(session)
    enabled = sum(m.enabled for m in list_models(session))
    if version is None:
        return ""
    trained_for = SatisfactionPredictor.from_bytes(version.blob).n_models
    if trained_for == enabled:
        return ""
    return (
        f"the active predictor (version {version.id}) was trained for {trained_for} models and "
        f"{enabled} are enabled: routers decide on each model's rating counts alone until "
        "`messplus retrain` (nightly, or now) publishes one for these models"
    )


def _template(args: argparse.Namespace) -> int:
    from db.zoo import get_model_by_name
    from workers.chat import ChatTemplateError, check_template
    from workers.cli._context import transaction

    text = None
    if not args.default:
        try:
            text = check_template(args.file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CliError(f"cannot read {args.file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise CliError(f"{args.file} is not UTF-8 text") from None
        except ChatTemplateError as exc:
            raise CliError(f"{args.file}: {exc}") from None
    with transaction() as session:
        get_model_by_name(session, args.model).chat_template = text
    shown = "the default chat template" if text is None else f"the chat template in {args.file}"
    print(f"model {args.model!r} renders chat requests with {shown}")
    return 0
