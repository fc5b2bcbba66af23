"""The REST sources shipped with Coinstream (each registered in ``coinstream.sources``)."""
