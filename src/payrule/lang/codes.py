"""Every diagnostic code, once: its severity, a title, what it means, a policy that gets it and its fix.

A `Diagnostic` (payrule.lang.diagnostics) is made from a code in this table and takes its severity from
here; nothing reads a code back out of a message. docs/lint-codes.md is generated from this table and
tests/test_codes.py lints every example: the bad one gets exactly its code, the fix gets no finding.

    PR0xx  reading and syntax          PR2xx  sets and codes          PR4xx  messages and sources
    PR1xx  policies and includes       PR3xx  rules and conditions

A code never changes meaning and a retired code is never reused (see RETIRED).

An example is a tuple of policy files; a file whose first line is a comment `# NAME.policy` is called
NAME.policy, any other `example.policy`. Files are linted together, sorted by name.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from enum import Enum

__all__ = ["Severity", "Code", "CODES", "GROUPS", "RETIRED", "lookup", "file_name"]


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Code:
    code: str
    severity: Severity
    title: str
    explanation: str  # one paragraph, Markdown
    bad: tuple[str, ...] = ()  # policy files that get this code (and nothing else)
    fix: tuple[str, ...] = ()  # the same files fixed (no finding at all)
    fix_note: str = ""  # the fix in words, Markdown


GROUPS = {
    "PR0": "Reading and syntax",
    "PR1": "Policies and includes",
    "PR2": "Sets and codes",
    "PR3": "Rules and conditions",
    "PR4": "Messages and sources",
}

RETIRED: dict[str, str] = {
    "PR000": "another error: a message the lint table did not know yet. Every diagnostic now has a code of its own.",
}


def file_name(text: str) -> str:
    """The name an example file is linted under: `# NAME.policy` on its first line, else example.policy."""
    first = text.split("\n", 1)[0]
    if first.startswith("# ") and first.strip().endswith(".policy"):
        return first[2:].strip()
    return "example.policy"


def _p(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


_E, _W = Severity.ERROR, Severity.WARNING

_UNITS = _p('''
    policy example "Knee injections"
      payer acme
      source CPT "CPT descriptors"
      codes INJ = 20610, 20611

      rule units:
        deny line when code in INJ and units > 1
        message "{code} is billed once per session"
        per CPT
''')

# A second rule, to follow _UNITS (its lines indented as in the policy).
_RULE_SIDE = (
    "  rule side:\n"
    "    review line when code in INJ and lacks modifier RT and lacks modifier LT\n"
    '    message "{code} does not say which knee (RT or LT)"\n'
    "    per CPT\n"
)

_CATALOG: tuple[Code, ...] = (
    # ---- reading and syntax ----------------------------------------------------------------------
    Code(
        "PR001", _E, "syntax error",
        "The text does not follow the language: a misspelled keyword, a missing `:` or `=`, a statement cut "
        "short, a policy without a title. The help lists what payrule expected at that point and, for a "
        "misspelled keyword or condition, the word you probably meant.",
        (_UNITS.replace("deny line when", "deny line whn"),),
        (_UNITS,),
        "write what the help asks for. The [language reference](language.md) gives every statement's form.",
    ),
    Code(
        "PR002", _E, "unclosed string",
        "A string runs to the end of its line without a closing `\"`. Strings cannot span lines.",
        (_UNITS.replace('"{code} is billed once per session"', '"{code} is billed once per session'),),
        (_UNITS,),
        "add the closing `\"` on the same line; write `\\\"` for a quote inside a string.",
    ),
    Code(
        "PR003", _E, "single-quoted string",
        "Strings use double quotes only.",
        (_UNITS.replace('"{code} is billed once per session"', "'{code} is billed once per session'"),),
        (_UNITS,),
        "write the string between double quotes.",
    ),
    Code(
        "PR004", _E, "unknown escape in a string",
        "A backslash starts an escape; the escapes are `\\\"`, `\\\\`, `\\n`, `\\t` and `\\uXXXX`.",
        (_UNITS.replace('"CPT descriptors"', r'"CPT descriptors, see S:\coding\cpt.pdf"'),),
        (_UNITS.replace('"CPT descriptors"', r'"CPT descriptors, see S:\\coding\\cpt.pdf"'),),
        "double the backslash: `\"S:\\\\coding\\\\cpt.pdf\"`.",
    ),
    Code(
        "PR005", _E, "policy file or folder cannot be read",
        "The file or folder is missing, unreadable, or the file is not UTF-8 text. `payrule check`, `test` "
        "and the other commands that load policies report it with the file's name; `payrule lint`, `fmt` "
        "and `compile` say which file and why, and exit 2.",
        (), (),
        "check the path and the permissions, and save the file as UTF-8.",
    ),
    Code(
        "PR006", _E, "lone surrogate escape in a string",
        "A `\\uD800`-`\\uDFFF` escape is half of a UTF-16 surrogate pair: a high half (`\\uD800`-`\\uDBFF`) "
        "must be followed at once by a low half (`\\uDC00`-`\\uDFFF`), and the pair stands for one character. "
        "Alone, it is no character at all (text copied from JSON sometimes has one).",
        (_UNITS.replace('"{code} is billed once per session"', r'"{code} is billed once per session \uDEAB"'),),
        (_UNITS.replace('"{code} is billed once per session"', r'"{code} is billed once per session \uD83D\uDEAB"'),),
        "write both halves of the pair (`\\uD83D\\uDEAB`), or the character itself.",
    ),
    Code(
        "PR007", _E, "a date that is not a real date",
        "Dates are written `YYYY-MM-DD` and must exist: `from 2024-02-30` names no day.",
        (_UNITS.replace("    per CPT\n", "    per CPT\n    from 2024-02-30\n"),),
        (_UNITS.replace("    per CPT\n", "    per CPT\n    from 2024-02-29\n"),),
        "write a day the calendar has.",
    ),
    Code(
        "PR008", _E, "a number too large",
        "Numbers in a policy are counts, windows and units: at most six digits. A longer one is a slip (a "
        "pasted id, a missing space), and refusing it keeps the arithmetic on dates small.",
        (_UNITS.replace("units > 1", "units > 10000000"),),
        (_UNITS.replace("units > 1", "units > 10"),),
        "write the number you mean; a window is at most 100 years (PR304).",
    ),
    Code(
        "PR009", _E, "a condition nested too deeply",
        "A condition may nest parentheses and `not` at most 100 deep. Machine-written policies sometimes go "
        "far deeper; payrule stops with this error, at the place, rather than run out of stack.",
        (_UNITS.replace("units > 1", "(" * 130 + "units > 1" + ")" * 130),),
        (_UNITS.replace("units > 1", "(units > 1)"),),
        "write it flatter: `a and b and c` needs no parentheses, and `not not x` is `x`.",
    ),
    # ---- policies and includes -------------------------------------------------------------------
    Code(
        "PR101", _E, "include of an unknown policy",
        "`include ID` names a policy id that no file in the policy folders declares (ids are the word after "
        "`policy`, not file names). A close id gets a `did you mean`.",
        (
            _p('''
                # common.policy
                policy common-knee "Shared knee injection rules"
            '''),
            _p('''
                # example.policy
                policy acme-knee "Acme: knee injections"
                  payer acme
                  include common-kne
            '''),
        ),
        (
            _p('''
                # common.policy
                policy common-knee "Shared knee injection rules"
            '''),
            _p('''
                # example.policy
                policy acme-knee "Acme: knee injections"
                  payer acme
                  include common-knee
            '''),
        ),
        "correct the id, or pass the folder that holds the policy with `--policies DIR`.",
    ),
    Code(
        "PR102", _E, "include cycle",
        "A policy includes itself, directly or through others, so its sets and rules have no first definition.",
        (
            _p('''
                # a.policy
                policy cycle-a "Acme: knee injections"
                  payer acme
                  include cycle-b
            '''),
            _p('''
                # b.policy
                policy cycle-b "Shared coding rules"
                  include cycle-a
            '''),
        ),
        (
            _p('''
                # a.policy
                policy cycle-a "Acme: knee injections"
                  payer acme
                  include cycle-b
            '''),
            _p('''
                # b.policy
                policy cycle-b "Shared coding rules"
            '''),
        ),
        "only one of the two includes the other; move what both need into a third policy that both include.",
    ),
    Code(
        "PR103", _E, "policy id defined twice",
        "Two files declare the same policy id, so `include` and the decisions' `policy` field would be ambiguous.",
        (
            _p('''
                # first.policy
                policy knee "Acme: knee injections"
                  payer acme
            '''),
            _p('''
                # second.policy
                policy knee "Globex: knee injections"
                  payer globex
            '''),
        ),
        (
            _p('''
                # first.policy
                policy acme-knee "Acme: knee injections"
                  payer acme
            '''),
            _p('''
                # second.policy
                policy globex-knee "Globex: knee injections"
                  payer globex
            '''),
        ),
        "give each policy its own id.",
    ),
    Code(
        "PR104", _E, "more than one payer in a policy",
        "A payer policy names exactly one payer.",
        (_p('''
            policy example "Knee injections"
              payer acme
              payer globex
        '''),),
        (_p('''
            policy example "Knee injections"
              payer acme
        '''),),
        "one policy per payer; put what they share in a policy without `payer` and include it from both.",
    ),
    Code(
        "PR105", _E, "two policies for one payer on the same dates",
        "Claims are routed to a policy by payer: its id or one of its aliases, trimmed, case-folded, runs of "
        "spaces as one. So on each date of service a payer name selects exactly one policy: two policies may "
        "answer to one name only as versions whose `version from ... until ...` dates do not overlap.",
        (
            _p('''
                # em.policy
                policy acme-em "Acme: E/M visits"
                  payer Acme
            '''),
            _p('''
                # knee.policy
                policy acme-knee "Acme: knee injections"
                  payer acme
            '''),
        ),
        (
            _p('''
                # em.policy
                policy acme-em "Acme: E/M visits"
            '''),
            _p('''
                # knee.policy
                policy acme-knee "Acme: knee injections"
                  payer acme
                  include acme-em
            '''),
        ),
        "merge the two, or keep the rules of one in a policy without `payer` and include it; for a revision "
        "that starts on a date, end one version with `version until D` and begin the next with `version from D+1`.",
    ),
    Code(
        "PR107", _E, "a version without a payer, or two version lines",
        "`version from D1 until D2` makes a policy its payer's policy for the lines dated D1 through D2 (either "
        "date may be left out). A policy says it once, and only a payer's policy has versions.",
        (_UNITS.replace("  payer acme\n", "  payer acme\n  version from 2024-04-01\n  version until 2025-03-31\n"),),
        (_UNITS.replace("  payer acme\n", "  payer acme\n  version from 2024-04-01 until 2025-03-31\n"),),
        "write one `version` line with both dates.",
    ),
    Code(
        "PR106", _E, "payer name that is blank, repeated, or without a payer",
        "`alias` gives other names a claim's payer may use for this policy's payer (`alias \"acme health plan\"`). "
        "Names compare trimmed, case-folded, runs of spaces as one; each must be non-blank and said once, and "
        "a policy with aliases needs a `payer`.",
        (_UNITS.replace("  payer acme\n", "  payer acme\n  alias \"Acme\"\n"),),
        (_UNITS.replace("  payer acme\n", "  payer acme\n  alias \"Acme Health\"\n"),),
        "remove the repeated name, or give the other name the payer really uses.",
    ),
    Code(
        "PR108", _W, "a policy that decides no claim",
        "Claims are routed to a policy by their payer, so a policy without `payer` is a library: its sets and "
        "rules apply through the payers' policies that `include` it. One that has no `payer` and that no "
        "policy includes decides nothing, and `payrule check` answers `no policy for payer` for the claims it "
        "was written for. Usually the `payer` line was forgotten.",
        (_UNITS.replace("  payer acme\n", ""),),
        (_UNITS,),
        "add `payer ID`, the payer the claims name; for rules several payers share, include the policy from "
        "each payer's policy (`include ID`).",
    ),
    # ---- sets and codes --------------------------------------------------------------------------
    Code(
        "PR110", _E, "a reserved word used as an id",
        "Keywords (`deny`, `line`, `code`, `in`, `from`, ... the list is on the language page) have a meaning; "
        "a policy, set, rule or source named by one would read as the keyword (`code in deny`). An id may "
        "contain one: `deny-imaging`, `per-day`.",
        (_UNITS.replace("rule units:", "rule per:"),),
        (_UNITS.replace("rule units:", "rule per-session:"),),
        "rename it; an id may contain the word.",
    ),
    Code(
        "PR201", _E, "unknown set",
        "A condition names a set that is not declared in the policy or in one it includes. Set names are "
        "case-sensitive; a close name gets a `did you mean`.",
        (_p('''
            policy example "Acme: E/M visits"
              payer acme
              source NCCI "NCCI Policy Manual"
              codes EM = 99202..99215

              rule em-needs-25:
                deny line when code in EM and same day as INJ and lacks modifier 25
                message "E/M {code} the same day as knee injection {other_code} needs modifier 25"
                per NCCI
        '''),),
        (_p('''
            policy example "Acme: E/M visits"
              payer acme
              source NCCI "NCCI Policy Manual"
              codes EM = 99202..99215
              codes INJ = 20610, 20611

              rule em-needs-25:
                deny line when code in EM and same day as INJ and lacks modifier 25
                message "E/M {code} the same day as knee injection {other_code} needs modifier 25"
                per NCCI
        '''),),
        "correct the name, declare the set, or include the policy that declares it.",
    ),
    Code(
        "PR202", _E, "set of the wrong kind",
        "`code in` needs a `codes` set; `has diagnosis in` a `diagnoses` (or `stems`) set; `has muscle in` "
        "a `names` (or `stems`) set, and so on.",
        (_p('''
            policy example "Knee injections"
              payer acme
              source LCD "Local coverage determination"
              codes INJ = 20610, 20611
              diagnoses COVERED = M79.1, M79.7

              rule covered:
                deny line when code in INJ and code not in COVERED
                message "no covered diagnosis"
                per LCD
        '''),),
        (_p('''
            policy example "Knee injections"
              payer acme
              source LCD "Local coverage determination"
              codes INJ = 20610, 20611
              diagnoses COVERED = M79.1, M79.7

              rule covered:
                deny line when code in INJ and lacks diagnosis in COVERED
                message "no covered diagnosis"
                per LCD
        '''),),
        "use the condition that reads that kind of value: here the rule meant `lacks diagnosis in COVERED`.",
    ),
    Code(
        "PR203", _E, "malformed procedure code",
        "A CPT or HCPCS code has exactly 5 letters or digits (`20610`, `J3301`, `0232T`), in a `codes` set "
        "or after `code is`.",
        (_UNITS.replace("20610, 20611", "20610, 2061"),),
        (_UNITS,),
        "write the full code; a leading zero counts (`01999`).",
    ),
    Code(
        "PR204", _E, "malformed diagnosis code",
        "An ICD-10-CM code is a letter, two digits, then up to four more letters or digits, with or without "
        "the dot (`M79.1`, `M7918`).",
        (_p('''
            policy example "Knee injections"
              payer acme
              source LCD "Local coverage determination"
              diagnoses COVERED = M79.1, 79.7

              rule covered-diagnosis:
                deny line when lacks diagnosis in COVERED
                message "no covered diagnosis"
                per LCD
        '''),),
        (_p('''
            policy example "Knee injections"
              payer acme
              source LCD "Local coverage determination"
              diagnoses COVERED = M79.1, M79.7

              rule covered-diagnosis:
                deny line when lacks diagnosis in COVERED
                message "no covered diagnosis"
                per LCD
        '''),),
        "add the chapter letter: `M79.7`.",
    ),
    Code(
        "PR205", _E, "malformed modifier",
        "A modifier is two letters or digits (`25`, `59`, `LT`).",
        (_p('''
            policy example "Knee injections"
              payer acme
              source NCCI "NCCI Policy Manual"
              codes INJ = 20610, 20611

              rule modifier-25:
                deny line when code in INJ and has modifier 250
                message "modifier 25 belongs on the E/M line, not on {code}"
                per NCCI
        '''),),
        (_p('''
            policy example "Knee injections"
              payer acme
              source NCCI "NCCI Policy Manual"
              codes INJ = 20610, 20611

              rule modifier-25:
                deny line when code in INJ and has modifier 25
                message "modifier 25 belongs on the E/M line, not on {code}"
                per NCCI
        '''),),
        "write the two characters of the modifier: `has modifier 25`.",
    ),
    Code(
        "PR206", _E, "malformed stem or name",
        "A stem is a word of letters and digits, or several such words in a row (`sodium chloride`): a value "
        "matches when one of its words starts with the stem (for several words, as many words in a row, each "
        "starting with its stem word). A name cannot be blank.",
        (_p('''
            policy example "Knee injections"
              payer acme
              source EXCLUDED "Excluded injectates"
              stems EXCLUDED_INJECTATES = "platelet-rich", "vitamin"

              rule excluded-injectate:
                deny claim when has substance in EXCLUDED_INJECTATES
                message "{matched} is an excluded injectate"
                per EXCLUDED
        '''),),
        (_p('''
            policy example "Knee injections"
              payer acme
              source EXCLUDED "Excluded injectates"
              stems EXCLUDED_INJECTATES = "platelet", "vitamin"

              rule excluded-injectate:
                deny claim when has substance in EXCLUDED_INJECTATES
                message "{matched} is an excluded injectate"
                per EXCLUDED
        '''),),
        'write the words without punctuation: `"platelet"` alone already matches "platelet-rich plasma"; use a `names` set to match whole names exactly.',
    ),
    Code(
        "PR207", _E, "range that is not a range of codes of one shape",
        "Ranges are for `codes` sets only, and both bounds need letters and digits in the same places: a range "
        "holds the codes of its bounds' shape.",
        (_p('''
            policy example "Knee injections"
              payer acme
              source CPT "CPT descriptors"
              codes CATEGORY_III = 0232T..99999

              rule category-iii:
                review line when code in CATEGORY_III
                message "{code} is a category III code"
                per CPT
        '''),),
        (_p('''
            policy example "Knee injections"
              payer acme
              source CPT "CPT descriptors"
              codes CATEGORY_III = 0001T..0999T

              rule category-iii:
                review line when code in CATEGORY_III
                message "{code} is a category III code"
                per CPT
        '''),),
        "give both bounds the same shape (`0001T..0999T`); list stems and names one by one.",
    ),
    Code(
        "PR208", _E, "range upside down",
        "The first bound is above the second, so the range holds nothing.",
        (_p('''
            policy example "E/M visits"
              payer acme
              source NCCI "NCCI Policy Manual"
              codes EM = 99215..99202
              codes INJ = 20610, 20611

              rule em-needs-25:
                deny line when code in EM and same day as INJ and lacks modifier 25
                message "E/M {code} the same day as knee injection {other_code} needs modifier 25"
                per NCCI
        '''),),
        (_p('''
            policy example "E/M visits"
              payer acme
              source NCCI "NCCI Policy Manual"
              codes EM = 99202..99215
              codes INJ = 20610, 20611

              rule em-needs-25:
                deny line when code in EM and same day as INJ and lacks modifier 25
                message "E/M {code} the same day as knee injection {other_code} needs modifier 25"
                per NCCI
        '''),),
        "low bound first.",
    ),
    Code(
        "PR209", _E, "set defined twice",
        "Two sets with one name in a policy, or a set that an included policy already declares.",
        (_UNITS.replace("  codes INJ = 20610, 20611\n", "  codes INJ = 20610, 20611\n  codes INJ = 20610\n"),),
        (_UNITS,),
        "rename one, or remove it and use the included set.",
    ),
    Code(
        "PR210", _W, "unused set",
        "No rule names the set, in its policy or in any policy that includes it.",
        (_UNITS.replace("  codes INJ = 20610, 20611\n",
                        "  codes INJ = 20610, 20611\n  codes DRY_NEEDLING = 20604, 20606\n"),),
        (_UNITS,),
        "remove the set, or write the rule that needs it. A set kept as documentation is better as a comment.",
    ),
    Code(
        "PR211", _W, "value listed twice in a set",
        "The same value twice (in the set's normal form: codes and diagnoses ignore case and dots, names ignore "
        "case and spacing), a code inside a range of the same set, or two overlapping ranges.",
        (_p('''
            policy example "E/M visits"
              payer acme
              source NCCI "NCCI Policy Manual"
              codes EM = 99202..99215, 99214
              codes INJ = 20610, 20611

              rule em-needs-25:
                deny line when code in EM and same day as INJ and lacks modifier 25
                message "E/M {code} the same day as knee injection {other_code} needs modifier 25"
                per NCCI
        '''),),
        (_p('''
            policy example "E/M visits"
              payer acme
              source NCCI "NCCI Policy Manual"
              codes EM = 99202..99215
              codes INJ = 20610, 20611

              rule em-needs-25:
                deny line when code in EM and same day as INJ and lacks modifier 25
                message "E/M {code} the same day as knee injection {other_code} needs modifier 25"
                per NCCI
        '''),),
        "remove the repeated value, or merge the ranges.",
    ),
    # ---- rules and conditions --------------------------------------------------------------------
    Code(
        "PR301", _E, "rule id defined twice",
        "Rule ids name a rule in decisions (`\"rule\": \"units\"`), so they are unique in a policy and in "
        "everything it includes.",
        (_UNITS + "\n" + _RULE_SIDE.replace("rule side:", "rule units:"),),
        (_UNITS + "\n" + _RULE_SIDE.replace("rule side:", "rule side:"),),
        "rename one of the two rules.",
    ),
    Code(
        "PR302", _E, "field that cannot be tested that way",
        "`has`, `lacks` and `every` test a list field (`modifiers`, `diagnoses`, `muscles`, `substances`, singular "
        "or plural), a text field (`site`; the claim's `prior_auth`, `claim_id`, `patient_id`, `payer`) or a field "
        "the schema does not know (see PR310); `every` needs a list. A number (`units`) is compared "
        "(`units > 1`), and a list's size with `distinct muscles > 2`; a comparison names a number field.",
        (_UNITS.replace("units > 1", "has units 2"),),
        (_UNITS,),
        "compare a number: `units > 1`.",
    ),
    Code(
        "PR310", _W, "field the claim schema does not know",
        "A claim's fields beyond the contract's are kept, and a rule may test them (`has place_of_service 11`); "
        "but a field name the schema does not know is more often a misspelling, which would never match. The "
        "linter says so, with the closest field it knows.",
        (_p('''
            policy example "Knee injections"
              payer acme
              source CPT "CPT descriptors"
              codes INJ = 20610, 20611

              rule side:
                review line when code in INJ and lacks modifer RT and lacks modifier LT
                message "{code} does not say which knee (RT or LT)"
                per CPT
        '''),),
        (_p('''
            policy example "Knee injections"
              payer acme
              source CPT "CPT descriptors"
              codes INJ = 20610, 20611

              rule side:
                review line when code in INJ and lacks modifier RT and lacks modifier LT
                message "{code} does not say which knee (RT or LT)"
                per CPT
        '''),),
        "correct the field name (or, for a field your claims really carry, keep it).",
    ),
    Code(
        "PR303", _E, "condition that can never be true",
        "The rule never fires. payrule finds this from the rule's `and` items alone: two different `code is`, "
        "`code in A and code not in A`, a code that is not in the set it must be in, code sets with no code "
        "in common, `has X` with `lacks X`, counts that cannot be met together (`units > 5 and units < 3`, "
        "`has muscles and distinct muscles < 1`), `units < 1` (units are at least 1), or an `or` none of "
        "whose branches can be true.",
        (_p('''
            policy example "Knee injections"
              payer acme
              source CPT "CPT descriptors"

              rule one-unit:
                deny line when code is 20610 and code is 20611 and units > 1
                message "{code} is billed once per joint, not {units} times"
                per CPT
        '''),),
        (_p('''
            policy example "Knee injections"
              payer acme
              source CPT "CPT descriptors"

              rule one-unit:
                deny line when (code is 20610 or code is 20611) and units > 1
                message "{code} is billed once per joint, not {units} times"
                per CPT
        '''),),
        "a line has one code: if either code should do, write `(code is 20610 or code is 20611)`, or use a "
        "set; otherwise keep the one the rule is about.",
    ),
    Code(
        "PR304", _E, "impossible limit",
        "`more than 0 ... sessions` denies every session (write the condition without the limit instead), a "
        "window of 0 days or months holds no earlier session, and `less than 1 days after the last ... "
        "session` is never true (earlier sessions are at least a day before).",
        (_p('''
            policy example "Knee injections"
              payer acme
              source LCD "Local coverage determination"
              codes INJ = 20610, 20611

              rule frequency:
                deny line when code in INJ and more than 0 INJ sessions within 12 months
                message "{nth} knee injection session in 12 months"
                per LCD
        '''),),
        (_p('''
            policy example "Knee injections"
              payer acme
              source LCD "Local coverage determination"
              codes INJ = 20610, 20611

              rule frequency:
                deny line when code in INJ and more than 3 INJ sessions within 12 months
                message "{nth} knee injection session in 12 months"
                per LCD
        '''),),
        "write the number of sessions allowed: `more than 3 INJ sessions within 12 months` denies the 4th.",
    ),
    Code(
        "PR305", _E, "claim rule that depends on other claims' decisions",
        "A `claim` rule denies every line of the claim, so it may look only at the claim's own lines and "
        "same-day lines: no session limits, no spacing, no `same day as earlier`.",
        (_p('''
            policy example "Knee injections"
              payer acme
              source LCD "Local coverage determination"
              codes INJ = 20610, 20611

              rule frequency:
                deny claim when code in INJ and more than 3 INJ sessions within 12 months
                message "{nth} knee injection session in 12 months"
                per LCD
        '''),),
        (_p('''
            policy example "Knee injections"
              payer acme
              source LCD "Local coverage determination"
              codes INJ = 20610, 20611

              rule frequency:
                deny line when code in INJ and more than 3 INJ sessions within 12 months
                message "{nth} knee injection session in 12 months"
                per LCD
        '''),),
        "deny the line: `deny line when ...`.",
    ),
    Code(
        "PR306", _W, "rule shadowed by an earlier rule with the same effect",
        "An earlier rule (in the policy or one it includes) has the same action and scope, and every one of "
        "its `and` items is also in this rule: whenever this rule fires, the earlier one already has, so this "
        "one never changes a decision. Only `and` items are compared, exactly as written: payrule does not try "
        "to prove that one condition implies another in general.",
        (_p('''
            policy example "Knee injections"
              payer acme
              source NCCI "NCCI Policy Manual"
              codes INJ = 20610, 20611

              rule modifier-25:
                deny line when code in INJ and has modifier 25
                message "modifier 25 belongs on the E/M line, not on {code}"
                per NCCI

              rule modifier-25-with-units:
                deny line when code in INJ and units > 1 and has modifier 25
                message "modifier 25 on {code} with {units} units"
                per NCCI
        '''),),
        (_p('''
            policy example "Knee injections"
              payer acme
              source NCCI "NCCI Policy Manual"
              codes INJ = 20610, 20611

              rule modifier-25:
                deny line when code in INJ and has modifier 25
                message "modifier 25 belongs on the E/M line, not on {code}"
                per NCCI
        '''),),
        "remove the later rule, or change one of the two so they say different things.",
    ),
    Code(
        "PR311", _W, "a rule another rule overlaps or contradicts",
        "Another rule (of the policy or one it includes) fires on every line this rule fires on and decides at "
        "least as much, so this rule never changes a decision. payrule sees it when the two rules' `and` items "
        "are the same but for a session limit or a spacing that the other's contains (`more than 5 INJ "
        "sessions within 12 months` is always `more than 3`; a gap of less than 7 days is always less than "
        "14), or are the same with the other rule denying what this one holds for review. Two sources written "
        "as two rules often end so. A rule of an included policy that the payer's own rule tightens is not "
        "reported: the included rule still decides for the other payers.",
        (_p('''
            policy example "Knee injections"
              payer acme
              source LCD "Local coverage determination"
              source PLAN "Acme plan bulletin"
              codes INJ = 20610, 20611

              rule frequency:
                deny line when code in INJ and more than 3 INJ sessions within 12 months
                message "{nth} knee injection session in 12 months"
                per LCD

              rule plan-frequency:
                deny line when code in INJ and more than 5 INJ sessions within 12 months
                message "{nth} knee injection session in 12 months"
                per PLAN
        '''),),
        (_p('''
            policy example "Knee injections"
              payer acme
              source LCD "Local coverage determination"
              source PLAN "Acme plan bulletin"
              codes INJ = 20610, 20611

              rule frequency:
                review line when code in INJ and more than 3 INJ sessions within 12 months
                message "{nth} knee injection session in 12 months: held for review"
                per LCD

              rule plan-frequency:
                deny line when code in INJ and more than 5 INJ sessions within 12 months
                message "{nth} knee injection session in 12 months"
                per PLAN
        '''),),
        "keep the one limit (or outcome) the payer's text gives and remove the other rule. Where the lower limit "
        "is meant as a warning, hold for review at it and deny at the higher one, as the fix does: each rule "
        "then decides some line the other does not.",
    ),
    # ---- messages and sources --------------------------------------------------------------------
    Code(
        "PR307", _E, "a clause written twice in one rule",
        "A rule takes at most one of each clause: `unless`, `from`, `until`, `message`, `per`, `carc`, `rarc`.",
        (_UNITS.replace("    per CPT\n", "    per CPT\n    message \"{code}: one unit\"\n"),),
        (_UNITS,),
        "keep one (the help says where the first is); to give a rule two exceptions, join them in one `unless` with `or`.",
    ),
    Code(
        "PR308", _E, "a rule that ends before it starts",
        "`from D1 until D2` is in force for lines dated D1 through D2; D1 after D2 leaves no day.",
        (_UNITS.replace("    per CPT\n", "    per CPT\n    from 2024-04-01 until 2024-03-31\n"),),
        (_UNITS.replace("    per CPT\n", "    per CPT\n    from 2023-04-01 until 2024-03-31\n"),),
        "swap the dates, or correct the one that is wrong.",
    ),
    Code(
        "PR309", _E, "sessions counted at the same value of a field that has several",
        "`at the same FIELD` groups sessions by one value of a line: a text field such as `site`, or a field "
        "of your claims. A list field (`muscles`) has several values, so a session has no one value to be "
        "counted under.",
        (_UNITS.replace("units > 1", "more than 3 INJ sessions within 90 days at the same muscle"),),
        (_UNITS.replace("units > 1", "more than 3 INJ sessions within 90 days at the same site"),),
        "group by `site` (or another one-valued field).",
    ),
    Code(
        "PR401", _E, "message placeholder the rule does not provide",
        "A message may quote `{code}`, `{date}`, `{line}`, `{units}`, `{claim_id}`, `{patient_id}`, `{payer}`, "
        "`{policy}` and `{rule}` always, and the facts its top-level `and` items find: `{matched}` for "
        "`has F in SET`, `{distinct_F}` for `distinct F`, `{other_code}` and friends for `same day as`, "
        "`{nth}`, `{next_date}` and friends for a session limit, `{days}`, `{last_date}` for spacing. A fact "
        "under `or` or `not` may not exist when the rule fires, so it cannot be quoted.",
        (_p('''
            policy example "Knee injections"
              payer acme
              source LCD "Local coverage determination"
              codes INJ = 20610, 20611

              rule frequency:
                deny line when code in INJ and more than 3 INJ sessions within 12 months
                message "{nht} session in 12 months; next eligible {next_date}"
                per LCD
        '''),),
        (_p('''
            policy example "Knee injections"
              payer acme
              source LCD "Local coverage determination"
              codes INJ = 20610, 20611

              rule frequency:
                deny line when code in INJ and more than 3 INJ sessions within 12 months
                message "{nth} session in 12 months; next eligible {next_date}"
                per LCD
        '''),),
        "quote one of the placeholders the help lists.",
    ),
    Code(
        "PR402", _E, "unmatched brace in a message",
        "`{` starts a placeholder; a literal brace is written twice.",
        (_UNITS.replace('"{code} is billed once per session"', '"{code} is billed once per session {not {units}"'),),
        (_UNITS.replace('"{code} is billed once per session"', '"{code} is billed once per session {{not {units}}}"'),),
        "close the placeholder, or write `{{` for `{` and `}}` for `}`.",
    ),
    Code(
        "PR403", _E, "unknown source",
        "`per SOURCE` names a source that is not declared in the policy or one it includes. A close name gets "
        "a `did you mean`.",
        (_p('''
            policy example "Knee injections"
              payer acme
              codes INJ = 20610, 20611

              rule bilateral:
                deny line when code in INJ and has modifier 50
                message "modifier 50 (bilateral) does not apply to {code}"
                per NORIDIAN
        '''),),
        (_p('''
            policy example "Knee injections"
              payer acme
              source NORIDIAN "Noridian JE Part B, Knee Injections article"
              codes INJ = 20610, 20611

              rule bilateral:
                deny line when code in INJ and has modifier 50
                message "modifier 50 (bilateral) does not apply to {code}"
                per NORIDIAN
        '''),),
        'correct the name, or declare the source with `source NAME "citation"`.',
    ),
    Code(
        "PR404", _E, "source defined twice",
        "Two sources with one name in one policy.",
        (_UNITS.replace('  source CPT "CPT descriptors"\n',
                        '  source CPT "CPT descriptors"\n  source CPT "AMA CPT Professional"\n'),),
        (_UNITS,),
        "keep one, or rename one and cite it from the rules it backs.",
    ),
    Code(
        "PR408", _E, "malformed CARC or RARC",
        "`carc` names the X12 Claim Adjustment Reason Code a rule's outcome maps to (`119`, `16`, `B7`); `rarc` "
        "a Remittance Advice Remark Code (`N130`, `M80`, `MA130`). They are copied into each reason.",
        (_UNITS.replace("    per CPT\n", "    per CPT\n    carc 1190\n"),),
        (_UNITS.replace("    per CPT\n", "    per CPT\n    carc 119\n"),),
        "write the code from the X12 code list.",
    ),
    Code(
        "PR405", _W, "unused source",
        "No rule cites the source with `per`, in its policy or in any policy that includes it.",
        (_UNITS.replace('  source CPT "CPT descriptors"\n',
                        '  source CPT "CPT descriptors"\n  source NCCI "NCCI Policy Manual"\n'),),
        (_UNITS,),
        "cite it from the rules that come from it, or remove it.",
    ),
    Code(
        "PR406", _W, "rule without a `per` citation",
        "Every denial should be traceable to the payer's text; the citation is shown with each decision.",
        (_UNITS.replace('  source CPT "CPT descriptors"\n', "").replace("    per CPT\n", ""),),
        (_UNITS,),
        "declare the source (`source CPT \"...\"`) and add `per CPT` to the rule.",
    ),
    Code(
        "PR407", _W, "rule without a message",
        "Without one, a decision's reason says only which rule fired; the biller needs to know why.",
        (_UNITS.replace('    message "{code} is billed once per session"\n', ""),),
        (_UNITS,),
        "add a message: `message \"{code} is billed once per session\"`.",
    ),
)

CODES: dict[str, Code] = {c.code: c for c in sorted(_CATALOG, key=lambda c: c.code)}


def lookup(code: str) -> Code:
    """The catalog entry of a code; ValueError for a code the catalog does not have."""
    try:
        return CODES[code]
    except KeyError:
        raise ValueError(f"unknown diagnostic code {code!r} (add it to payrule.lang.codes)") from None
