"""The trainer: mine templates, fit the next-event LSTM, calibrate a threshold, export ONNX + model.json.

Imports torch (except ``mining``); the daemon and the scorers never import this package.
"""
