"""Load test of anomaly-serve: posts the model's example rows (in metadata.json, e.g. the mean beat
of each class) to the TensorFlow Serving REST path and the Open Inference Protocol (KServe V2) path,
and checks every answer. It asks the server which model it serves (GET /ui/model: its name, input,
outputs and examples), so it runs unchanged against any model; where the examples are named
"normal" and "anomalous", as `npm run train` names them, it also checks each verdict.

Run it like any locustfile:

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8080 --headless -u 50 -r 25 -t 1m

A server that asks for an API key gets one as a Bearer token: API_KEY, or the first key in the file
API_KEYS_FILE names (the in-cluster load test mounts the server's Secret there).

For autoscaling demos, LOAD_SHAPE=ramp replaces -u/-r/-t with a ramp-up, a plateau and a
ramp-down (see StagesShape). Without LOAD_SHAPE no shape class exists, because Locust uses a shape
class in place of -u/-r/-t whenever the locustfile defines one.
"""

import os
import random

from locust import HttpUser, LoadTestShape, between, task

# What the server says of its model, fetched by the first user of each Locust process.
MODEL = None


def api_key(env=os.environ):
    """The key to send: API_KEY, else the first key in API_KEYS_FILE (one a line, # comments),
    else none."""
    if env.get("API_KEY"):
        return env["API_KEY"].strip()
    path = env.get("API_KEYS_FILE")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as file:
            keys = [line.strip() for line in file if line.strip() and not line.strip().startswith("#")]
    except OSError as error:
        raise SystemExit(f"locustfile: API_KEYS_FILE={path!r} cannot be read: {error.strerror}") from None
    if not keys:
        raise SystemExit(f"locustfile: API_KEYS_FILE={path!r} holds no key")
    return keys[0]


API_KEY = api_key()


def midpoint(normalisation, width):
    """A row in the middle of what the model was trained on, by its normalisation."""
    if normalisation["method"] == "min-max":
        return [(normalisation["min"] + normalisation["max"]) / 2] * width
    if normalisation["method"] == "standard":
        return list(normalisation["mean"])
    return [0.0] * width


def model_facts(client):
    """The served model's name, input, output names by role, and example rows with the verdict each
    should get (None where the example's name does not say)."""
    global MODEL
    if MODEL is None:
        facts = client.get("/ui/model", name="model facts").json()
        signature = facts["signature"]
        outputs = {output["role"]: output["name"] for output in signature["outputs"]}
        examples = facts.get("examples") or [
            # No examples in the model's metadata: the middle of its input range, unjudged.
            {"name": "midpoint", "values": midpoint(facts["normalisation"], signature["inputs"][0]["shape"][1])}
        ]
        verdicts = {"normal": False, "anomalous": True}
        MODEL = {
            "name": facts["name"],
            "input": signature["inputs"][0]["name"],
            "score": outputs["score"],
            "verdict": outputs["verdict"],
            "examples": [(example["name"], example["values"], verdicts.get(example["name"])) for example in examples],
        }
    return MODEL


class ModelUser(HttpUser):
    """A client of the detector, on both protocols: three requests in four send the first example
    (the normal one, for a model trained here), the rest one of the others."""

    wait_time = between(0.05, 0.2)

    def on_start(self):
        if API_KEY:
            self.client.headers["Authorization"] = f"Bearer {API_KEY}"
        self.model = model_facts(self.client)

    def check(self, response, verdict, expected, label):
        if expected is not None and verdict != expected:
            response.failure(f"{label} scored {self.model['verdict']}={verdict}")

    def predict(self, example):
        label, values, expected = example
        with self.client.post(
            f"/v1/models/{self.model['name']}:predict",
            json={"instances": [values]},
            name=f"tfserving predict ({label})",
            catch_response=True,
        ) as response:
            try:
                verdict = response.json()["predictions"][0][self.model["verdict"]]
            except (ValueError, KeyError, IndexError, TypeError):
                response.failure(f"unexpected answer {response.status_code}: {response.text[:200]}")
                return
            self.check(response, verdict, expected, label)

    def infer(self, example):
        label, values, expected = example
        body = {"inputs": [{"name": self.model["input"], "shape": [1, len(values)], "datatype": "FP32", "data": values}]}
        with self.client.post(
            f"/v2/models/{self.model['name']}/infer", json=body, name=f"v2 infer ({label})", catch_response=True
        ) as response:
            try:
                outputs = {output["name"]: output["data"] for output in response.json()["outputs"]}
                verdict = outputs[self.model["verdict"]][0]
            except (ValueError, KeyError, IndexError, TypeError):
                response.failure(f"unexpected answer {response.status_code}: {response.text[:200]}")
                return
            self.check(response, verdict, expected, label)

    def example(self, first):
        examples = self.model["examples"]
        return examples[0] if first else random.choice(examples[1:] or examples)

    @task(6)
    def predict_first(self):
        self.predict(self.example(first=True))

    @task(2)
    def predict_other(self):
        self.predict(self.example(first=False))

    @task(3)
    def infer_first(self):
        self.infer(self.example(first=True))

    @task(1)
    def infer_other(self):
        self.infer(self.example(first=False))


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
