"""`payrule explain`: every rule of a policy in plain English."""
from __future__ import annotations

import argparse
import sys
from datetime import date

from payrule.cli.commands._common import EXIT_OK, NoSuchPolicyFile, add_policy_arguments, load_policy_files, usage_error
from payrule.tools.explain import FORMATS, render_policy

NAME = "explain"
HELP = "say what each rule of a policy does, in plain English"
DESCRIPTION = (
    "Print each policy's title, payer and sources, then every rule it applies (included rules first): "
    "its id, where it is written, what it does in plain English and its message."
)


def add_arguments(k) -> None:
    k.add_argument("policy_files", nargs="+", metavar="POLICY", help="policy files to explain")
    add_policy_arguments(k, "a folder of your own policies where included ones are found, beside the shipped ones; may repeat")
    k.add_argument("--own", action="store_true",
                   help="only the policy's own rules and sources, not those of the policies it includes")
    k.add_argument("--format", choices=FORMATS, default="text", help="text (default) or markdown")
    k.add_argument("--date", metavar="YYYY-MM-DD", type=_date,
                   help="only the rules in force for a line with this date of service")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def run(args) -> int:
    try:
        ws, files = load_policy_files(args.policy_files, args)
    except NoSuchPolicyFile as exc:
        return usage_error(str(exc), "PR005")
    parts, seen = [], set()
    for p in files:
        model = ws.policy_for_file(p)
        if model.id in seen:
            continue
        seen.add(model.id)
        parts.append(render_policy(model, args.format, own_only=args.own, on=args.date).rstrip("\n") + "\n")
    sys.stdout.write(("\n---\n\n" if args.format == "markdown" else "\n").join(parts))
    return EXIT_OK
