"""The MESS+ routing core: pure numpy, no broker, database or network."""
