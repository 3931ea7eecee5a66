"""Presentation of a table: a readable terminal table, CSV, JSON. No arithmetic here."""

from __future__ import annotations

from app.core.csv_safe import csv_text
from app.core.numbers import si_count
from app.core.table import LayerRow, Table

CSV_COLUMNS = [
    "index",
    "name",
    "kind",
    "in_h",
    "in_w",
    "in_d",
    "out_h",
    "out_w",
    "out_d",
    "weights",
    "biases",
    "params",
    "macs",
    "flops",
    "activations",
    "activation_bytes",
    "receptive_field",
    "jump",
    "output_formula",
    "params_formula",
    "macs_formula",
]


def volume(row_volume: object) -> str:
    h, w, d = (getattr(row_volume, k) for k in ("height", "width", "channels"))
    return f"{w}x{h}x{d}"


def _csv_cells(row: LayerRow) -> list[object]:
    return [
        row.index,
        row.name,
        row.kind,
        row.input.height,
        row.input.width,
        row.input.channels,
        row.output.height,
        row.output.width,
        row.output.channels,
        row.weights,
        row.biases,
        row.params,
        row.macs,
        row.flops,
        row.activations,
        row.activation_bytes,
        row.receptive_field,
        "" if row.jump is None else row.jump,
        row.formula.output or "",
        row.formula.params or "",
        row.formula.macs or "",
    ]


def to_csv(table: Table) -> str:
    """One row per layer, then a TOTAL row; numbers are plain integers for spreadsheets."""
    totals = table.totals
    total_cells: list[object] = ["", "TOTAL", "", *[""] * 6]
    total_cells += [totals.weights, totals.biases, totals.params, totals.macs, totals.flops]
    total_cells += [totals.activations, totals.activation_bytes, "", "", "", "", ""]
    return csv_text(CSV_COLUMNS, [*(_csv_cells(row) for row in table.layers), total_cells])


def to_json(table: Table) -> str:
    return table.model_dump_json(indent=2)


def _text_row(row: LayerRow) -> list[str]:
    return [
        str(row.index),
        row.name,
        row.kind,
        volume(row.output),
        f"{row.params:,}",
        f"{row.macs:,}",
        str(row.receptive_field),
    ]


def to_text(table: Table) -> str:
    """A terminal table in the lecture's W x H x D order, then the totals."""
    header = ["#", "layer", "kind", "output WxHxD", "params", "MACs", "RF"]
    body = [_text_row(row) for row in table.layers]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    right = {0, 4, 5, 6}

    def render(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "-" * len(render(header))
    t = table.totals
    lines = [
        f"{table.name}" + (f" ({table.id})" if table.id else "") + f", input {volume(table.input)}",
        rule,
        render(header),
        rule,
        *(render(cells) for cells in body),
        rule,
        f"params       {t.params:>17,}  ({si_count(t.params)})",
        f"  conv side  {t.conv_params:>17,}  ({t.conv_share:.1%})",
        f"  FC side    {t.fc_params:>17,}  ({t.fc_share:.1%})",
        f"MACs         {t.macs:>17,}  (FLOPs = 2 x MACs = {t.flops:,})",
        f"activations  {t.activations:>17,}  ({t.activation_bytes:,} bytes at fp32)",
        f"depth        {t.depth:>17}  (layers with weights: conv + FC)",
    ]
    lines += [f"warning: layer {w.index} ({w.name}): {w.message}" for w in table.warnings]
    return "\n".join(lines) + "\n"
