import uuid

import pytest

from apps.users.interface import UserDTO, UserNotFound, get_user, get_users


@pytest.mark.django_db
def test_get_user_returns_a_frozen_dto(customer):
    dto = get_user(customer.id)

    assert dto == UserDTO(
        id=customer.id,
        email="customer@example.com",
        name=customer.name,
        is_active=True,
        is_staff=False,
    )
    with pytest.raises(AttributeError):
        dto.name = "changed"


@pytest.mark.django_db
def test_get_user_unknown_raises_user_not_found():
    with pytest.raises(UserNotFound):
        get_user(uuid.uuid4())


@pytest.mark.django_db
def test_get_users_returns_only_existing(customer, staff):
    found = get_users([customer.id, staff.id, uuid.uuid4()])

    assert set(found) == {customer.id, staff.id}


@pytest.mark.django_db
def test_createsuperuser_by_email(capsys):
    from django.core.management import call_command

    from apps.users.models import User

    call_command(
        "createsuperuser",
        email="Root@Example.com",
        name="Root",
        interactive=False,
    )

    user = User.objects.get(email="root@example.com")
    assert user.is_staff and user.is_superuser
