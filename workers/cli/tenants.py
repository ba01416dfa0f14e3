"""`messplus tenants add|list|set|keys`: who is served, with which SLA target and router
knobs, and with which API keys the HTTP API (api/) lets them in.

A tenant's stored settings are MessPlusSettings field overrides (v, c, headroom,
sla_confidence), read by
every router worker; they are validated here by building MessPlusSettings from them, so a
tenant the router cannot serve is never created. workers.provision.add_tenant starts its
virtual queue at the router's placeholder backlog (MessPlusSettings.initial_queue) in the
same transaction, so no router ever sees the tenant without it.
"""

from __future__ import annotations

import argparse
import json
import sys

from workers.cli import DATABASE, CliError
from workers.cli._input import alpha, finite_float, name, positive_int
from workers.cli._table import print_table

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tenants = subparsers.add_parser("tenants", help="add, list or change tenants")
    commands = tenants.add_subparsers(dest="tenants_command", required=True, metavar="COMMAND")
    add = commands.add_parser(
        "add",
        help="create a tenant with its SLA target",
        description="Create a tenant. --V, --c, --headroom and --sla-confidence override the "
        "router's defaults for this tenant only; the virtual queue starts at V + headroom.",
    )
    add.add_argument("name")
    add.add_argument("--alpha", type=finite_float, required=True, help="SLA target in (0, 1)")
    add.add_argument("--V", dest="v", type=finite_float, help="unit-free cost weight (> 0)")
    add.add_argument("--c", type=finite_float, help="exploration constant in [0, 1]")
    add.add_argument(
        "--headroom", type=finite_float, help="answers ahead of alpha to aim for (>= 0)"
    )
    add.add_argument(
        "--sla-confidence",
        type=finite_float,
        help="standard errors of margin on the estimated satisfaction of unrated answers "
        "(>= 0; more costs more and misses alpha less often when few users rate)",
    )
    add.set_defaults(func=_add, uses=frozenset({DATABASE}))
    listing = commands.add_parser("list", help="every tenant with its SLA state")
    listing.set_defaults(func=_list, uses=frozenset({DATABASE}))
    change = commands.add_parser(
        "set",
        help="change a tenant's SLA target",
        description="Change alpha at run time; routers read it per chunk and the virtual "
        "queue keeps its value.",
    )
    change.add_argument("name")
    change.add_argument("--alpha", type=finite_float, required=True, help="SLA target in (0, 1)")
    change.set_defaults(func=_set, uses=frozenset({DATABASE}))
    keys = commands.add_parser("keys", help="a tenant's API keys for the HTTP API")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    create = key_commands.add_parser(
        "create",
        help="make a new API key and print it (once)",
        description="Print a new API key for the tenant on stdout, alone. Only its hash is "
        "stored: it cannot be shown again, so keep it now.",
    )
    create.add_argument("name", metavar="NAME")
    create.set_defaults(func=_create_key, uses=frozenset({DATABASE}))
    key_list = key_commands.add_parser(
        "list", help="the tenant's keys: id, start of the key, created, revoked"
    )
    key_list.add_argument("name", metavar="NAME")
    key_list.set_defaults(func=_list_keys, uses=frozenset({DATABASE}))
    revoke = key_commands.add_parser(
        "revoke",
        help="revoke a key; the next request using it is refused",
        description="Revoke the key with this id (see `keys list`). Every API process "
        "checks keys on each request, so the key stops working at once.",
    )
    revoke.add_argument("name", metavar="NAME")
    revoke.add_argument("key_id", metavar="KEY_ID", type=positive_int)
    revoke.set_defaults(func=_revoke_key, uses=frozenset({DATABASE}))


def _add(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from db.models import SlaState
    from workers.cli._context import transaction
    from workers.provision import add_tenant

    tenant_name = name(args.name, "tenant")
    target = alpha(args.alpha)
    overrides = {
        key: value
        for key, value in (
            ("v", args.v),
            ("c", args.c),
            ("headroom", args.headroom),
            ("sla_confidence", args.sla_confidence),
        )
        if value is not None
    }
    with transaction() as session:
        try:
            tenant = add_tenant(session, tenant_name, target, overrides)
        except ValueError as exc:  # MessPlusSettings refusing a knob; rolls the tenant back
            raise CliError(str(exc)) from None
        queue = session.scalar(
            select(SlaState.virtual_queue).where(SlaState.tenant_id == tenant.id)
        )
    print(
        f"tenant {tenant_name!r} added: alpha {target:g}, settings {json.dumps(overrides)}, "
        f"virtual queue {queue:g}"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from db.models import SlaState, Tenant
    from workers.cli._context import transaction

    rows = []
    with transaction() as session:
        # A plain join, not db.sla.lock_sla_state: a listing must not hold up routers.
        listed = session.execute(
            select(Tenant, SlaState)
            .join(SlaState, SlaState.tenant_id == Tenant.id)
            .order_by(Tenant.name)
        )
        for tenant, state in listed:
            share = f"{state.satisfied_count / state.rated_count:.4f}" if state.rated_count else "-"
            rows.append(
                (
                    tenant.name,
                    f"{tenant.alpha:g}",
                    json.dumps(tenant.settings, sort_keys=True),
                    f"{state.virtual_queue:.4g}",
                    str(state.request_counter),
                    str(state.rated_count),
                    share,
                )
            )
    if not rows:
        print("no tenants (add one with `messplus tenants add NAME --alpha A`)")
        return 0
    header = ("name", "alpha", "settings", "virtual queue", "requests", "rated", "satisfied")
    print_table(header, rows)
    return 0


def _set(args: argparse.Namespace) -> int:
    from db.tenants import get_tenant_by_name, set_alpha
    from workers.cli._context import transaction

    target = alpha(args.alpha)
    with transaction() as session:
        tenant = get_tenant_by_name(session, args.name)
        previous = tenant.alpha
        set_alpha(session, tenant.id, target)
    print(f"tenant {args.name!r}: alpha {previous:g} -> {target:g}")
    return 0


def _create_key(args: argparse.Namespace) -> int:
    from db.api_keys import create_key
    from db.tenants import get_tenant_by_name
    from workers.cli._context import transaction

    with transaction() as session:
        key, secret = create_key(session, get_tenant_by_name(session, args.name).id)
        key_id = key.id
    print(secret, flush=True)
    print(
        f"key {key_id} of tenant {args.name!r}: shown once, only its hash is stored",
        file=sys.stderr,
    )
    return 0


def _list_keys(args: argparse.Namespace) -> int:
    from db.api_keys import list_keys
    from db.tenants import get_tenant_by_name
    from workers.cli._context import transaction

    with transaction() as session:
        keys = list_keys(session, get_tenant_by_name(session, args.name).id)
    if not keys:
        print(f"tenant {args.name!r} has no keys (`messplus tenants keys create {args.name}`)")
        return 0
    print(f"{'id':>4}  {'key':<15}  {'created (UTC)':<19}  revoked (UTC)")
    for key in keys:
        revoked = "-" if key.revoked_at is None else f"{key.revoked_at:%Y-%m-%d %H:%M:%S}"
        print(
            f"{key.id:>4}  {key.prefix + '...':<15}  {key.created_at:%Y-%m-%d %H:%M:%S}  {revoked}"
        )
    return 0


def _revoke_key(args: argparse.Namespace) -> int:
    from db.api_keys import revoke_key
    from db.tenants import get_tenant_by_name
    from workers.cli._context import transaction

    with transaction() as session:
        key = revoke_key(session, get_tenant_by_name(session, args.name).id, args.key_id)
        prefix = key.prefix
    print(f"key {args.key_id} ({prefix}...) of tenant {args.name!r} revoked")
    return 0
