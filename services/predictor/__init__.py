"""The predictor: online predictions (fityard.v1.PredictionService) from
models kept in memory. Stateless apart from its cache, so a pool of them is
scaled like trainers (more processes, more pods), without a queue: a request
is answered by the predictor that receives it.

- models.py: which models are in memory (LRU bounded by bytes), each loaded
  once however many requests ask for it at the same moment;
- compiled.py: each model compiled as it is loaded (Treelite), used only if
  it answers exactly as scikit-learn does;
- batching.py: concurrent requests for one model become one predict_proba;
- rows.py: rows from the wire (JSON-like Structs, Arrow IPC) and answers back;
- service.py: the RPCs.
"""
