"""Exercise checks: each compares a student's answer with the package and gives hints."""
