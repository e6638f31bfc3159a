"""The paper's comparison on one data set: every model on the same seeded splits."""
