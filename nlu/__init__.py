"""Natural-language understanding for the hub: training data, tokens, language, entities, intents.

```python
from nlu import TrainingData, IntentClassifier
classifier = IntentClassifier.train(TrainingData.load("examples/shop/nlu"))
classifier.parse("where is my order 12345678").intent  # "check_order"
```
"""

from nlu.classifier import IntentClassifier, Parse
from nlu.data import NluDataError, TrainingData
from nlu.language import detect_language
from nlu.tokenize import tokenize
from nlu.vectors import StaticVectors

__all__ = [
    "IntentClassifier",
    "NluDataError",
    "Parse",
    "StaticVectors",
    "TrainingData",
    "detect_language",
    "tokenize",
]
