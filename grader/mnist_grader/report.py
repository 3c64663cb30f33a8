"""Plain-text tables for the terminal."""
from __future__ import annotations


def format_table(headers: list[str], rows: list[list[object]]) -> str:
    """Left-aligned columns, a rule under the header."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_results(results) -> None:
    """Summary of a grading run: one row per submission, then a line per failure and per flag."""
    rows = []
    for r in results:
        score = "-" if r.score is None else f"{r.score:g}/{r.max_score:g}"
        status = ("HELD" if r.held else "graded") if r.ok else "FAILED"
        rows.append([r.student, score, status, f"{r.seconds:.1f}", f"{r.peak_rss_mb:.0f}",
                     len(r.flags) or ""])
    print(format_table(["student", "score", "status", "seconds", "peak MiB", "flags"], rows))
    for r in results:
        if not r.ok and r.score is None:  # refused before grading: the gradebook is untouched
            print(f"FAILED to grade {r.student}: {r.reason}")
        elif not r.ok:
            print(f"FAILED to grade {r.student}: {r.reason} (flagged in the gradebook, score kept "
                  f"at {r.score:g})")
    for r in results:
        if r.flags:
            held = " (score HELD at 0: grade it by hand in Formgrader)" if r.held else ""
            print(f"FLAGGED {r.student} for review{held}: " + "; ".join(r.flags[:4])
                  + (" ..." if len(r.flags) > 4 else ""))
    graded = sum(r.ok for r in results)
    print(f"{graded}/{len(results)} submissions graded, {len(results) - graded} failed, "
          f"{sum(bool(r.flags) for r in results)} flagged")
