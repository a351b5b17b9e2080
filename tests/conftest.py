"""Shared test set-up: quiet TensorFlow, no GPU, tiny images written to tmp folders."""

import os

# Must happen before TensorFlow is imported anywhere in the test session.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
