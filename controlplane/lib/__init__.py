"""Pure helpers shared by every app and by the reference gateway: no Django import here, ever
(import-linter checks it)."""
