"""Nothing pacsbridge writes can be read by other users of the machine, whatever the umask it
was started with; a state folder made open by someone else is refused with the fix."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.uid import generate_uid
from sqlmodel import select

from core import store
from core.integrations import add_integration, list_integrations
from core.store import Instance, SyncScope
from core.sync import SyncOrder, run_sync
from core.viewer import thumbnail_file
from pacsbridge.cli import main
from pacsbridge.demo import synthetic as factory


@pytest.fixture
def shell_umask() -> Iterator[None]:
    """Start as a login shell usually does (022: new files readable by everyone)."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def modes(root: Path) -> dict[str, int]:
    return {
        str(path.relative_to(root)): stat.S_IMODE(path.stat().st_mode)
        for path in [root, *root.rglob("*")]
    }


def test_a_real_sync_leaves_only_private_files(
    shell_umask, orthanc, clinic, patient_id, pacsbridge_home, store_backend
):
    orthanc.upload(
        [
            factory.us_image(
                patient_id=patient_id,
                study_uid=generate_uid(),
                series_uid=generate_uid(),
                frames=3,
            )
        ]
    )
    add_integration(clinic, orthanc.password)

    assert run_sync(clinic.name, SyncOrder(scope=SyncScope.PATIENT, value=patient_id)).ok
    with store.session() as db:
        [image] = db.exec(select(Instance)).all()
    assert thumbnail_file(image) is not None  # made on first view

    found = modes(pacsbridge_home)
    names = {Path(p).name for p in found}
    expected = {"secret.key", "frames", "thumbnail.jpg"}
    if store_backend == "sqlite":
        expected.add("pacsbridge.db")  # on PostgreSQL the rows live in the server
    assert expected <= names
    assert {path: oct(mode) for path, mode in found.items() if mode & 0o077} == {}


# On SQLite even `integrations list` opens the home (the database is in it); on PostgreSQL the
# first command that reads the key or the files does the same check.
@pytest.mark.sqlite_only
@pytest.mark.parametrize("folder", [".", "files"])
def test_a_state_folder_open_to_others_is_refused_with_the_fix(folder, pacsbridge_home, capsys):
    shared = pacsbridge_home / folder
    shared.mkdir(mode=0o700, parents=True)
    pacsbridge_home.chmod(0o700)
    shared.chmod(0o755)

    code = main(["integrations", "list"])

    assert code == 1
    err = capsys.readouterr().err
    assert f"{shared if folder == 'files' else pacsbridge_home} is open to other users" in err
    assert "chmod -R go= " in err
    shared.chmod(0o700)
    assert main(["integrations", "list"]) == 0
    assert list_integrations() == []
