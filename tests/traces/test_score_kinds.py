"""What a score kind says its answers are: the facts forms, configs and agreement ask."""

from traces.models import ScoreDataType
from traces.score_kinds import data_types, score_kind


def test_each_answer_shape_belongs_to_its_data_types() -> None:
    def having(attribute: str) -> set[str]:
        return set(data_types(lambda kind: getattr(kind, attribute)))

    assert having("numeric") == {ScoreDataType.NUMERIC}
    assert having("has_options") == {ScoreDataType.CATEGORICAL}
    assert having("yes_no") == {ScoreDataType.BOOLEAN}
    assert having("free_text") == {ScoreDataType.TEXT}
    assert having("labelled") == {ScoreDataType.CATEGORICAL, ScoreDataType.TEXT}
    assert score_kind(ScoreDataType.BOOLEAN).render(True) == "true"
