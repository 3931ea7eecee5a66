"""An exact evaluator for the formula strings the calculator writes (docs/architecture.md,
"Formulas"): a small recursive-descent parser over Fractions, never Python's eval.

    formula := part ("; " part)*
    part    := [("H" | "W") ": "] expr (" = " expr)+     every side equal; the last is the value,
                                                      a number (with a sign and a label at most)
    expr    := term (("+" | "-") term)*
    term    := factor (("*" | "/") factor)*
    factor  := "-" factor | primary label?
    primary := number | "(" expr ")" | "⌊" expr "⌋" | "⌈" expr "⌉"
    number  := 1234 | 1,234,567 | 12.34
    label   := word (" " word)*        words name what a number counts; they never compute

A side that does not evaluate to the same exact number as the others, a word where an operator
must be ("55 x 55"), text after the formula, and a floor or ceiling around a whole number (the
division was exact, so the brackets claim a rounding that never happens) are all refused.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

TOKEN = re.compile(
    r"\s*(?:(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"|(?P<word>[A-Za-z]+)|(?P<op>[-+*/()=⌊⌋⌈⌉]))"
)
AXIS = re.compile(r"^(H|W): ")


class FormulaError(ValueError):
    """The text is not a formula of the grammar, or one of its equations is false."""


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokens(text: str) -> list[Token]:
    found, position = [], 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip() == "":
                break
            raise FormulaError(f"unexpected {text[position:]!r} in {text!r}")
        kind = match.lastgroup or ""
        found.append(Token(kind, match.group(kind)))
        position = match.end()
    return found


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items = tokens(text)
        self.at = 0

    def peek(self) -> Token | None:
        return self.items[self.at] if self.at < len(self.items) else None

    def take(self, text: str | None = None) -> Token:
        token = self.peek()
        if token is None or (text is not None and token.text != text):
            raise FormulaError(f"expected {text or 'more'} at token {self.at} of {self.text!r}")
        self.at += 1
        return token

    def expr(self) -> Fraction:
        value = self.term()
        while (token := self.peek()) is not None and token.text in "+-" and token.kind == "op":
            self.take()
            value = value + self.term() if token.text == "+" else value - self.term()
        return value

    def term(self) -> Fraction:
        value = self.factor()
        while (token := self.peek()) is not None and token.text in "*/" and token.kind == "op":
            self.take()
            right = self.factor()
            if token.text == "/" and right == 0:
                raise FormulaError(f"division by zero in {self.text!r}")
            value = value * right if token.text == "*" else value / right
        return value

    def factor(self) -> Fraction:
        token = self.peek()
        if token is not None and token.text == "-":
            self.take()
            return -self.factor()
        value = self.primary()
        while (label := self.peek()) is not None and label.kind == "word":
            self.take()  # a word after a number names it: "96 biases", "MACs each"
        return value

    def primary(self) -> Fraction:
        token = self.take()
        if token.kind == "number":
            return Fraction(token.text.replace(",", ""))
        closing = {"(": ")", "⌊": "⌋", "⌈": "⌉"}.get(token.text)
        if closing is None:
            raise FormulaError(f"unexpected {token.text!r} in {self.text!r}")
        inner = self.expr()
        self.take(closing)
        if token.text == "(":
            return inner
        if inner.denominator == 1:
            raise FormulaError(f"{token.text}...{closing} around a whole number in {self.text!r}")
        rounded = math.floor(inner) if token.text == "⌊" else math.ceil(inner)
        return Fraction(rounded)

    def chain(self) -> list[Fraction]:
        """Every side of ``a = b = c``; the last must be a plain number (the value)."""
        sides = [self.expr()]
        last_start = 0
        while self.peek() is not None:
            self.take("=")
            last_start = self.at
            sides.append(self.expr())
        if len(sides) < 2:
            raise FormulaError(f"no '=' in {self.text!r}")
        value = self.items[last_start : self.at]
        if value and value[0].text == "-":
            value = value[1:]  # a negative value: "... = -1" in a refusal
        if value[0].kind != "number" or any(t.kind != "word" for t in value[1:]):
            raise FormulaError(f"the value after the last '=' is not a number in {self.text!r}")
        return sides


def evaluate(formula: str) -> dict[str, Fraction]:
    """The value of each part of a true formula (its axis, or "" for a single part); raises
    FormulaError when any side of any equation differs from the others, or it is no formula."""
    values: dict[str, Fraction] = {}
    for part in formula.split("; "):
        axis_match = AXIS.match(part)
        axis = axis_match.group(1) if axis_match else ""
        body = part[axis_match.end() :] if axis_match else part
        sides = Parser(body).chain()
        if any(side != sides[-1] for side in sides):
            shown = " = ".join(str(side) for side in sides)
            raise FormulaError(f"false as written: {formula!r} evaluates to {shown}")
        if axis in values:
            raise FormulaError(f"two parts for {axis or 'the value'} in {formula!r}")
        values[axis] = sides[-1]
    return values


def value_of(formula: str) -> Fraction:
    """The value of a one-part formula."""
    values = evaluate(formula)
    if set(values) != {""}:
        raise FormulaError(f"expected one part in {formula!r}")
    return values[""]
