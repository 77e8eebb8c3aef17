"""Drive a harden text model from Python through `harden predict --serve-stdin`.

`HardenModel` is a TextAttack `ModelWrapper` (a plain callable when TextAttack is not
installed): it starts one `harden predict RUN --serve-stdin` process and sends each list of
texts as one request, so TextAttack (or any script) can attack a model harden trained.

    python3 harden_wrapper.py RUN "a fine film" "dull and long"    # prints the probabilities

With TextAttack:

    import textattack
    from harden_wrapper import HardenModel
    model = HardenModel("runs/sentiment")
    attack = textattack.attack_recipes.DeepWordBugGao2018.build(model)

The `harden` binary is taken from $HARDEN, else from the PATH.
"""

import json
import os
import subprocess
import sys

try:
    from textattack.models.wrappers import ModelWrapper
except ImportError:  # TextAttack is optional: the wrapper is a plain callable without it.
    ModelWrapper = object


class HardenModel(ModelWrapper):
    """A harden run as a model that maps a list of texts to class probabilities."""

    def __init__(self, run, harden=None, device="auto"):
        harden = harden or os.environ.get("HARDEN", "harden")
        self.model = run  # TextAttack reads `model`; here it only names the run.
        self.process = subprocess.Popen(
            [harden, "predict", str(run), "--serve-stdin", "--device", device],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def __call__(self, text_input_list):
        """The probabilities of each class for each text, one row per text."""
        request = {"texts": [str(t) for t in text_input_list]}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        if "error" in answer:
            raise ValueError(answer["error"])
        return [p["probabilities"] for p in answer["predictions"]]

    def close(self):
        """Ends the harden process."""
        self.process.stdin.close()
        self.process.wait()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: harden_wrapper.py RUN TEXT...")
    model = HardenModel(sys.argv[1], device="flex")
    print(json.dumps(model(sys.argv[2:])))
    model.close()
