"""Compares two conformance transcripts (real PX4 SITL and gridpatrol-sim) step by step,
with the allowed differences of tests/conformance/allowed.toml, and writes the table.

Usage: conformance_compare.py PX4.json SIM.json ALLOWED.toml TABLE.md [DOC.md]
Exits 1 when a difference is not allowed. With DOC.md, the table replaces the block
between `<!-- conformance:begin -->` and `<!-- conformance:end -->` in it.
Stream rates match within 20 % (or 0.15 Hz, for the slow ones counted over 20 s of the
vehicle's clock).
"""

import json
import sys
import tomllib


def rate_ok(a, b):
    return abs(a - b) <= max(0.2 * max(a, b), 0.15)


def show(v):
    return "–" if v is None else (json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v)


def compare_params(step, pa, pb, judge_difference):
    """Rows for two parameter lists ({name: [type, value]} in the vehicle's order): one for
    the names in order, one for the types, and one per parameter whose value differs."""
    rows = []
    na, nb = list(pa), list(pb)
    missing, extra = [n for n in na if n not in pb], [n for n in nb if n not in pa]
    if na == nb:
        rows.append((step, "names in order", f"{len(na)} names", f"{len(nb)} names", "same"))
    else:
        rows.append((step, "names in order", f"{len(na)} names, {len(missing)} not in the sim: "
                     f"{missing[:5]}", f"{len(nb)} names, {len(extra)} not on PX4: {extra[:5]}",
                     judge_difference(step, "names in order")))
    types = [n for n in na if n in pb and pa[n][0] != pb[n][0]]
    rows.append((step, "types", f"{len(na)} typed", f"{len(types)} differ: {types[:5]}",
                 "same" if not types else judge_difference(step, "types")))
    differ = [n for n in na if n in pb and pa[n][1] != pb[n][1]]
    rows.append((step, "values", f"{len(na)} values", f"{len(na) - len(differ)} equal, "
                 f"{len(differ)} in the rows below", "same"))
    for n in differ:
        rows.append((step, f"value {n}", show(pa[n][1]), show(pb[n][1]),
                     judge_difference(step, f"value {n}")))
    return rows


def main():
    px4 = {s["step"]: s for s in json.load(open(sys.argv[1]))["steps"]}
    sim = {s["step"]: s for s in json.load(open(sys.argv[2]))["steps"]}
    allowed = {(a["step"], a["key"]): a["reason"]
               for a in tomllib.load(open(sys.argv[3], "rb")).get("allowed", [])}
    rows = []
    used = set()

    def judge_difference(step, key):
        if (step, key) in allowed:
            used.add((step, key))
            return "allowed: " + allowed[(step, key)]
        return "**different**"

    for step in list(px4) + [s for s in sim if s not in px4]:
        a, b = px4.get(step, {}), sim.get(step, {})
        if "rates" in a or "rates" in b:
            ra, rb = a.get("rates", {}), b.get("rates", {})
            for key in sorted(set(ra) | set(rb)):
                x, y = ra.get(key), rb.get(key)
                if x is not None and y is not None and rate_ok(x, y):
                    verdict = "same" if x == y else "within 20 %"
                else:
                    verdict = judge_difference(step, key)
                rows.append((step, key, show(x), show(y), verdict))
        if "params" in a or "params" in b:
            rows.extend(compare_params(step, a.get("params", {}), b.get("params", {}),
                                       judge_difference))
        keys = [k for k in sorted(set(a) | set(b)) if k not in ("step", "rates", "params")]
        for key in keys:
            x, y = a.get(key), b.get(key)
            verdict = "same" if x == y else judge_difference(step, key)
            rows.append((step, key, show(x), show(y), verdict))
    same = sum(1 for r in rows if r[4] in ("same", "within 20 %"))
    bad = sum(1 for r in rows if r[4] == "**different**")
    lines = [
        f"{len(rows)} facts compared: {same} the same (rates within 20 %), "
        f"{len(rows) - same - bad} allowed differences, {bad} unexplained.",
        "",
        "| step | fact | PX4 v1.16 SITL | gridpatrol-sim | verdict |",
        "|---|---|---|---|---|",
    ] + [f"| {s} | {k} | {x} | {y} | {v} |".replace("\n", " ") for s, k, x, y, v in rows]
    table = "\n".join(lines) + "\n"
    open(sys.argv[4], "w").write(table)
    if len(sys.argv) > 5:
        doc = open(sys.argv[5]).read()
        begin, end = "<!-- conformance:begin -->", "<!-- conformance:end -->"
        i, j = doc.index(begin) + len(begin), doc.index(end)
        open(sys.argv[5], "w").write(doc[:i] + "\n" + table + doc[j:])
    print(lines[0])
    for r in rows:
        if r[4] == "**different**":
            print("DIFFERENT:", " | ".join(r))
    unused = set(allowed) - used
    for u in sorted(unused):
        print("allowed but not seen (remove it?):", u)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
