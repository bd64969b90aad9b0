;; A module built for a plugin interface this trueup does not speak.
(module
  (memory (export "memory") 1)
  (func (export "trueup_interface_version") (result i32) (i32.const 99))
  (func (export "trueup_input") (param i32) (result i32) (i32.const 0))
  (func (export "trueup_describe") (result i64) (i64.const 0))
  (func (export "trueup_start") (param i32) (result i64) (i64.const 0))
  (func (export "trueup_check") (param i32) (result i64) (i64.const 0))
  (func (export "trueup_finish") (result i64) (i64.const 0)))
