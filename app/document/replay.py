"""Whether the current parameters can be rebuilt by the exported Python script.

"Export as Python" (:mod:`app.document.export_python`) writes a recipe: draw the data, initialize,
run one forward, train N steps. It reproduces the window's parameters bit for bit only when they
came from exactly that recipe, from the random stream as it stands right after the input was
drawn. The document follows its own history with a :class:`Replay` record (saved in
``model.json`` under ``'replay'``, so undo, redo and files carry it):

- ``fresh``: nothing was drawn since the input; the next Initialize starts a recipe.
- ``recipe``: the parameters are Initialize → (Forward) → ``steps`` training steps (a Train run,
  or Backward followed by Step, with the configured loss, optimizer and batch size);
  ``pending`` says a Backward is waiting for its Step.
- ``off``: something else changed them (set_data, an import, an Initialize after other draws,
  a second Backward drawing Dropout masks...); ``note`` says what, and how to start over.

Only what changes parameter values or the random stream matters: editing the training settings
after the first step does (the script would train every step with the new settings), drawing
nothing does not.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Replay", "START_OVER"]

_INTERLEAVED = ("deferred parameters were initialized by a training forward, between Dropout "
                "draws (run Forward after Initialize to keep the recipe replayable)")

START_OVER = ("To get a replayable recipe: set the input's seed again (Inspector → input), then "
              "Initialize and train.")


@dataclass(frozen=True)
class Replay:
    stage: str = "fresh"        # fresh | recipe | off
    steps: int = 0              # training steps since Initialize (stage 'recipe')
    pending: bool = False       # a Backward waits for its Step
    rng: bool = True            # the random stream stands where the recipe leaves it
    note: str = ""              # why the recipe does not reproduce the values (stage 'off')

    # ------------------------------------------------------------------ json
    def to_json(self) -> dict:
        return {"stage": self.stage, "steps": self.steps, "pending": self.pending,
                "rng": self.rng, "note": self.note}

    @classmethod
    def from_json(cls, d) -> Replay:
        """Parse ``model.json``'s ``'replay'``; a file without one (or with a malformed one)
        does not say how its values were made."""
        if d is None:
            return cls("off", note="this file does not record how its parameters were made")
        try:
            stage, steps = d["stage"], d.get("steps", 0)
            ok = stage in ("fresh", "recipe", "off") and isinstance(steps, int) and steps >= 0
        except (TypeError, KeyError, AttributeError):
            ok = False
        if not ok:
            return cls("off", note="this file's record of how its parameters were made is "
                                   "unreadable")
        return cls(stage, steps, bool(d.get("pending", False)), bool(d.get("rng", True)),
                   str(d.get("note", "")))

    # ------------------------------------------------------------------ queries
    @property
    def steps_or_none(self) -> int | None:
        return self.steps if self.stage == "recipe" else None

    def why_not(self) -> str:
        if self.stage == "recipe":
            return ""
        if self.stage == "fresh":
            return "the parameters are not initialized yet"
        return self.note

    # ------------------------------------------------------------------ transitions
    def off(self, why: str) -> Replay:
        if self.stage == "off":
            return self
        return Replay("off", note=f"{why}. {START_OVER}")

    def input_drawn(self, any_values: bool) -> Replay:
        """The input was (re)drawn from its seed: a fresh stream, unless parameters already
        hold values that came from another stream position."""
        if not any_values:
            return Replay("fresh")
        return self.off("the input was changed after the parameters were initialized")

    def initialized(self, partial: bool, redraw: bool) -> Replay:
        """An Initialize; ``redraw``: it gave some parameter new values (force_reinit, or a
        parameter that had none)."""
        if not redraw:
            return self                 # Gluon skips initialized parameters: nothing drawn
        if self.stage == "fresh" and not partial:
            return Replay("recipe")
        return self.off("only some parameters were initialized" if partial else
                        "Initialize ran again after the random stream had moved on")

    def forwarded(self, resolved: bool) -> Replay:
        """A Forward; ``resolved``: it initialized deferred parameters (random draws)."""
        if self.stage == "recipe" and resolved and (self.steps or self.pending or not self.rng):
            return self.off("deferred parameters were initialized later than the script "
                            "initializes them")
        return self

    def backward(self, draws: bool, interleaved: bool = False) -> Replay:  # noqa: FBT001
        """A Backward; ``draws``: it drew random numbers (Dropout masks, deferred shapes);
        ``interleaved``: its recorded forward initialized deferred parameters between Dropout
        draws, where the script's Forward initializes them first."""
        if self.stage != "recipe":
            return self
        if interleaved:
            return self.off(_INTERLEAVED)
        if draws and (self.pending or not self.rng):
            return self.off("Backward drew random numbers (Dropout) that no training step used"
                            if self.pending else
                            "the random stream of the session that made these values is not "
                            "saved with the file")
        return Replay("recipe", self.steps, True, self.rng)

    def stepped(self, default_batch: bool) -> Replay:
        if self.stage != "recipe":
            return self
        if not self.pending:
            return self.off("Step ran on gradients a training step had already used")
        if not default_batch:
            return self.off("Step ran with a batch size other than the configured one")
        return Replay("recipe", self.steps + 1, False, self.rng)

    def trained(self, steps: int, draws: bool, interleaved: bool = False) -> Replay:  # noqa: FBT001
        if self.stage != "recipe" or steps == 0:
            return self
        if interleaved:
            return self.off(_INTERLEAVED)
        if draws and (self.pending or not self.rng):
            return self.off("training drew random numbers (Dropout) after a Backward no step "
                            "used" if self.pending else
                            "the random stream of the session that made these values is not "
                            "saved with the file")
        return Replay("recipe", self.steps + steps, False, self.rng)

    def config_changed(self) -> Replay:
        if self.stage == "recipe" and (self.steps or self.pending):
            return self.off("the loss, target or optimizer changed after training began (the "
                            "script trains every step with the current settings)")
        return self

    def reopened(self) -> Replay:
        """Read back from a file: the values are the file's, the stream starts again."""
        if self.stage == "recipe":
            return Replay("recipe", self.steps, self.pending, False)
        return self
