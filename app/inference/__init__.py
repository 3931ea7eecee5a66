"""ONNX Runtime inference on the model repository: preprocessing, providers, sessions, top-5 and
feature maps. No torch here: the models are read from models/, as a Triton server would read them.
"""
