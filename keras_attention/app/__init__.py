"""What a program runs end to end, wiring the other packages together:
``decoder.Decoder`` decodes text with any trained model folder or export.
Nothing here imports TensorFlow until a model is loaded."""
