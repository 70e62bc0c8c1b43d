"""The embedded simulator of the training API: a parametric truth, in-process or over HTTP."""
