"""A character n-gram intent classifier combined with DIET's intent ranking (a Rasa 3.6 graph component).

On this data (short, colloquial Chinese; 11 intents, ~1,500 examples) a linear model on character n-grams
generalises better than DIET alone, while DIET extracts the entities. This component trains a TF-IDF
(`char_wb` n-grams, sublinear tf) + logistic-regression classifier on the raw text of the training examples,
persists it in Rasa's model storage (skops, with an allowlist of types), and at parse time writes back
`intent` and `intent_ranking` as the weighted average

    p(intent) = diet_weight * p_DIET(intent) + (1 - diet_weight) * p_ngram(intent)

of the two models' probabilities. Put it after DIETClassifier and before FallbackClassifier in `config.yml`, so the
fallback threshold applies to the combined confidence. With `diet_weight: 0` (or DIET trained with
`intent_classification: false`) the n-gram model alone decides the intent.

Rasa imports it as `components.ensemble.CharNgramEnsembleClassifier`: Rasa puts its working directory on
`sys.path`, so `rasa train` and `rasa run` must run with the working directory `nlu_data/`
(`bot/rasa_service.py` does).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

log = logging.getLogger(__name__)

_MODEL_FILE = "char_ngram_intents.skops"
# The only types the persisted pipeline may contain besides skops' defaults (checked on load).
_TRUSTED_TYPES = frozenset(
    {
        "sklearn.feature_extraction.text.TfidfVectorizer",
        "sklearn.feature_extraction.text.TfidfTransformer",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.pipeline.Pipeline",
        "scipy.sparse._csr.csr_matrix",
        "numpy.float64",
        "numpy.int64",
        "builtins.int",
        "builtins.float",
        "builtins.str",
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
    }
)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class CharNgramEnsembleClassifier(GraphComponent, IntentClassifier):
    """TF-IDF character n-grams + logistic regression, averaged with the intent ranking of the classifier before it."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "analyzer": "char_wb",
            "min_ngram": 1,
            "max_ngram": 3,
            "C": 100.0,  # chosen by 5-fold cross-validation on the training data
            "max_iter": 3000,
            "diet_weight": 0.3,  # weight of the previous classifier's (DIET's) probabilities
            "expose_parts": True,  # add both models' rankings to the parse result as `intent_ensemble`
            "random_state": 2026,
        }

    @staticmethod
    def required_packages() -> list[str]:
        return ["sklearn", "skops"]

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        pipeline: Any | None = None,
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self._pipeline = pipeline

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> CharNgramEnsembleClassifier:
        return cls(config, model_storage, resource)

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        weight = float(config.get("diet_weight", 0.0))
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"diet_weight must lie in [0, 1], not {weight}")

    def _new_pipeline(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        return Pipeline(
            [
                (
                    "tfidf",
                    TfidfVectorizer(
                        analyzer=self.config["analyzer"],
                        ngram_range=(int(self.config["min_ngram"]), int(self.config["max_ngram"])),
                        sublinear_tf=True,
                    ),
                ),
                (
                    "clf",
                    LogisticRegression(
                        C=float(self.config["C"]),
                        class_weight="balanced",
                        max_iter=int(self.config["max_iter"]),
                        random_state=int(self.config["random_state"]),
                    ),
                ),
            ]
        )

    def train(self, training_data: TrainingData) -> Resource:
        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        labels = {e.get(INTENT) for e in examples}
        if len(labels) < 2:
            log.warning("%s needs at least two intents to train; it will pass rankings through", type(self).__name__)
            return self._resource
        pipeline = self._new_pipeline()
        pipeline.fit([e.get(TEXT) for e in examples], [e.get(INTENT) for e in examples])
        self._pipeline = pipeline
        self.persist()
        return self._resource

    def persist(self) -> None:
        import skops.io as sio

        with self._model_storage.write_to(self._resource) as model_dir:
            sio.dump(self._pipeline, model_dir / _MODEL_FILE)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> CharNgramEnsembleClassifier:
        import skops.io as sio

        try:
            with model_storage.read_from(resource) as model_dir:
                path = model_dir / _MODEL_FILE
                if not path.exists():
                    raise ValueError(f"{path.name} is missing")
                untrusted = sio.get_untrusted_types(file=path)
                unexpected = sorted(set(untrusted) - _TRUSTED_TYPES)
                if unexpected:  # never load what this component did not write
                    raise RuntimeError(f"refusing to load {path.name}: unexpected types {unexpected}")
                pipeline = sio.load(path, trusted=untrusted)
        except ValueError as exc:  # nothing was trained (e.g. fewer than two intents)
            log.warning("%s has no trained model (%s); it passes rankings through", cls.__name__, exc)
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource, pipeline)

    # --- prediction ---------------------------------------------------------------------------------------

    def process(self, messages: list[Message]) -> list[Message]:
        if self._pipeline is None or not messages:
            return messages
        texts = [m.get(TEXT) or "" for m in messages]
        probabilities = self._pipeline.predict_proba(texts)
        classes = [str(c) for c in self._pipeline.classes_]
        weight = float(self.config["diet_weight"])
        for message, row in zip(messages, probabilities, strict=True):
            ngram = {name: float(p) for name, p in zip(classes, row, strict=True)}
            previous = {
                str(r.get("name")): float(r.get("confidence") or 0.0)
                for r in message.get(INTENT_RANKING_KEY) or ()
                if isinstance(r, dict) and r.get("name")
            }
            combined = combine(previous, ngram, diet_weight=weight)
            ranking = [{"name": name, "confidence": conf} for name, conf in combined]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
            if self.config["expose_parts"]:
                message.set(
                    "intent_ensemble",
                    {
                        "diet_weight": weight,
                        "diet": _rounded(previous),
                        "ngram": _rounded(ngram),
                    },
                    add_to_output=True,
                )
        return messages


def combine(
    previous: dict[str, float], ngram: dict[str, float], *, diet_weight: float
) -> list[tuple[str, float]]:
    """The weighted average of two intent distributions, best first. Without a previous ranking the n-gram
    model's probabilities stand alone; intents missing from a ranking count as probability 0."""
    if not previous:
        diet_weight = 0.0
    names = sorted(set(previous) | set(ngram))
    values = np.array(
        [diet_weight * previous.get(n, 0.0) + (1.0 - diet_weight) * ngram.get(n, 0.0) for n in names]
    )
    total = float(values.sum())
    if total > 0:
        values = values / total
    order = np.argsort(-values, kind="stable")
    return [(names[i], float(values[i])) for i in order]


def _rounded(distribution: dict[str, float]) -> dict[str, float]:
    return {name: round(p, 4) for name, p in sorted(distribution.items(), key=lambda kv: -kv[1])}
