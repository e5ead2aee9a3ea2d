"""Review's web pages: the reviewer's (My work, the review page, My history,
adjudication) and the lead's (rubrics, queues, routing, the board, items)."""
