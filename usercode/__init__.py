"""Run user code (``encoding_to_net`` and evaluator modules) in an isolated, limited sandbox."""

from usercode.sandbox import SandboxError, SandboxLimits, run_user_code, tail

__all__ = ["SandboxError", "SandboxLimits", "run_user_code", "tail"]
