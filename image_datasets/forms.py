"""The dataset upload form of the dashboard; it calls the same service as the API."""

from __future__ import annotations

from django import forms

from nasweb.errors import DomainError


class ImageDatasetUploadForm(forms.Form):
    name = forms.CharField(max_length=200, error_messages={"required": "give the dataset a name"})
    archive = forms.FileField(
        label="Archive", error_messages={"required": "choose an archive (.zip, .tar.gz) or a .parquet file"},
        help_text="A .zip or .tar(.gz) of class folders (class_name/*.png, optionally under train/ and "
                  "validation/), of a datasets save_to_disk folder or of parquet files; or one .parquet file.",
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,.tar,.tgz,.gz,.bz2,.xz,.parquet"}),
    )

    def add_domain_error(self, error: DomainError) -> None:
        self.add_error(error.field if error.field in self.fields else None, error.reason)
