"""The built-in environments, one module each; `tokenroll.envs.registry.BUILTINS` names them."""
