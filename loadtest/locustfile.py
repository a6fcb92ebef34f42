"""Load test of anomaly-serve: posts the example heartbeats (the class means in metadata.json) to the
TensorFlow Serving REST path and the Open Inference Protocol (KServe V2) path, and checks every
verdict.

Run it like any locustfile:

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8080 --headless -u 50 -r 25 -t 1m

For autoscaling demos, LOAD_SHAPE=ramp replaces -u/-r/-t with a ramp-up, a plateau and a
ramp-down (see StagesShape). Without LOAD_SHAPE no shape class exists, because Locust uses a shape
class in place of -u/-r/-t whenever the locustfile defines one.

Environment:
    EXAMPLES_PATH   the metadata.json (or a JSON file with its "examples") to take beats from
                    (default: ../model/artifacts/metadata.json next to this file)
    MODEL_NAME      the model's name in the URLs (default: ecg-autoencoder)
"""

import json
import os
from pathlib import Path

from locust import HttpUser, LoadTestShape, between, task

MODEL_NAME = os.environ.get("MODEL_NAME", "ecg-autoencoder")
EXAMPLES_PATH = Path(
    os.environ.get("EXAMPLES_PATH", Path(__file__).resolve().parent.parent / "model" / "artifacts" / "metadata.json")
)


def load_examples(path):
    """The example beats by class, and whether the model should call each an anomaly."""
    examples = json.loads(Path(path).read_text())["examples"]
    return {example["name"]: (example["beat"], example["name"] != "normal") for example in examples}


EXAMPLES = load_examples(EXAMPLES_PATH)
NORMAL = EXAMPLES["normal"]
ANOMALOUS = EXAMPLES["anomalous"]


class HeartbeatUser(HttpUser):
    """A client of the detector: mostly normal beats, some anomalous ones, on both protocols."""

    wait_time = between(0.05, 0.2)

    def predict(self, example, label):
        beat, expect_anomaly = example
        with self.client.post(
            f"/v1/models/{MODEL_NAME}:predict",
            json={"instances": [beat]},
            name=f"tfserving predict ({label})",
            catch_response=True,
        ) as response:
            try:
                verdict = response.json()["predictions"][0]["is_anomaly"]
            except (ValueError, KeyError, IndexError, TypeError):
                response.failure(f"unexpected answer {response.status_code}: {response.text[:200]}")
                return
            if verdict != expect_anomaly:
                response.failure(f"{label} beat scored is_anomaly={verdict}")

    def infer(self, example, label):
        beat, expect_anomaly = example
        body = {"inputs": [{"name": "beat", "shape": [1, len(beat)], "datatype": "FP32", "data": beat}]}
        with self.client.post(
            f"/v2/models/{MODEL_NAME}/infer", json=body, name=f"v2 infer ({label})", catch_response=True
        ) as response:
            try:
                outputs = {output["name"]: output["data"] for output in response.json()["outputs"]}
                verdict = outputs["is_anomaly"][0]
            except (ValueError, KeyError, IndexError, TypeError):
                response.failure(f"unexpected answer {response.status_code}: {response.text[:200]}")
                return
            if verdict != expect_anomaly:
                response.failure(f"{label} beat scored is_anomaly={verdict}")

    @task(6)
    def predict_normal(self):
        self.predict(NORMAL, "normal")

    @task(2)
    def predict_anomalous(self):
        self.predict(ANOMALOUS, "anomalous")

    @task(3)
    def infer_normal(self):
        self.infer(NORMAL, "normal")

    @task(1)
    def infer_anomalous(self):
        self.infer(ANOMALOUS, "anomalous")


def stages_from_environment(env=os.environ):
    """Ramp up to PEAK_USERS over RAMP_UP_SECONDS, hold for PLATEAU_SECONDS, ramp down over
    RAMP_DOWN_SECONDS, then stop. Each stage is (end time in seconds, users, spawn rate)."""

    def number(name, default):
        value = env.get(name, str(default))
        try:
            parsed = int(value)
        except ValueError:
            raise SystemExit(f"locustfile: {name}={value!r} must be a whole number") from None
        if parsed < 1:
            raise SystemExit(f"locustfile: {name}={value!r} must be at least 1")
        return parsed

    peak = number("PEAK_USERS", 200)
    ramp_up = number("RAMP_UP_SECONDS", 120)
    plateau = number("PLATEAU_SECONDS", 300)
    ramp_down = number("RAMP_DOWN_SECONDS", 120)
    return [
        (ramp_up, peak, max(1.0, peak / ramp_up)),
        (ramp_up + plateau, peak, max(1.0, peak / ramp_up)),
        (ramp_up + plateau + ramp_down, 1, max(1.0, peak / ramp_down)),
    ]


if os.environ.get("LOAD_SHAPE") == "ramp":

    class StagesShape(LoadTestShape):
        """Ramp-up, plateau and ramp-down, for watching the HPA scale up and back down."""

        stages = stages_from_environment()

        def tick(self):
            run_time = self.get_run_time()
            for end, users, spawn_rate in self.stages:
                if run_time < end:
                    return users, spawn_rate
            return None

elif os.environ.get("LOAD_SHAPE"):
    raise SystemExit(f"locustfile: LOAD_SHAPE={os.environ['LOAD_SHAPE']!r}: the only shape is 'ramp'")
