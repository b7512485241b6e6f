"""The README's deployment section lists every setting, exactly as service/settings.py has it."""

from service.settings import Settings, environment_table
from tests.deploy.compose import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_readme_holds_the_generated_environment_table():
    assert environment_table() in README, (
        "README.md's settings table is stale: paste service.settings.environment_table()"
    )


def test_the_table_lists_every_setting_with_its_default_and_description():
    table = environment_table()
    rows = table.splitlines()[2:]
    assert len(rows) == len(Settings.model_fields)
    for row, (name, field) in zip(rows, Settings.model_fields.items(), strict=True):
        assert row.startswith(f"| `AUTOGRAD_{name.upper()}` | `{field.default}`")
        assert field.description and field.description.split()[0] in row


def test_the_deployment_section_names_its_files_and_probes():
    section = README[README.index("## Deploy") :]
    for text in ("docker compose up", "docker-compose.yml", "Dockerfile", "deploy/nginx.conf",
                 "/livez", "/readyz", "/metrics", "X-Request-ID", "Redis Cluster"):  # fmt: skip
        assert text in section, text
